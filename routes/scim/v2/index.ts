import type { FastifyPluginAsync } from 'fastify'
import { errors } from '../../../src/infra/errors.ts'
import discovery from './_discovery.ts'
import groups from './_groups.ts'
import users from './_users.ts'

/**
 * /scim/v2: SCIM 2.0 (RFC 7643, RFC 7644) for identity providers, API clients
 * with scope `scim`. One context with the prefix (autohooks.ts: SCIM errors,
 * application/scim+json), so that an unknown path under it is a SCIM 404 too.
 */
const plugin: FastifyPluginAsync = async (app) => {
  app.setNotFoundHandler((request) => { throw new errors.RouteNotFound(request.method, request.url.split('?')[0] as string) })
  await app.register(discovery)
  await app.register(users)
  await app.register(groups)
}
export default plugin
