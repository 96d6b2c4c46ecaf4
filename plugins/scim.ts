import fp from 'fastify-plugin'
import { createScimService, type ScimService } from '../src/scim/service.ts'
import { discovery } from '../src/scim/discovery.ts'
import { publicUrl } from '../src/config.ts'
import { ResourceType, SchemaResource, ScimError, ScimGroup, ScimUser } from '../schemas/scim.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** SCIM 2.0 provisioning (src/scim/service.ts) over the users and groups services, and its discovery documents. */
    scim: ScimService & { discovery: ReturnType<typeof discovery> }
  }
}

/** SCIM 2.0 under /scim/v2: the service over app.users and app.groups, its shared schemas. */
export default fp(async (app) => {
  for (const schema of [ScimUser, ScimGroup, ScimError, ResourceType, SchemaResource]) app.addSchema(schema)
  const base = `${publicUrl(app.config)}/scim/v2`
  app.decorate('scim', { ...createScimService(app.users, app.groups, base), discovery: discovery(base, `${publicUrl(app.config)}/apidocs`) })
}, { name: 'scim', dependencies: ['config', 'users', 'groups'] })
