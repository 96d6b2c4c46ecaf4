import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { jsonParser } from '../../../plugins/body.ts'
import { SCIM_JSON } from '../../../schemas/scim.ts'
import { triageError } from '../../../src/infra/problem.ts'
import { scimErrorBody } from '../../../src/scim/errors.ts'

/** Roster's codes that are SCIM conflicts or bad values, as their scimType (and status). */
const SCIM_TYPES: Record<string, { scimType: string, status?: number }> = {
  ROSTER_USER_EMAIL_TAKEN: { scimType: 'uniqueness' },
  ROSTER_USER_NAME_TAKEN: { scimType: 'uniqueness' },
  ROSTER_USER_EXTERNAL_ID_TAKEN: { scimType: 'uniqueness' },
  ROSTER_GROUP_NAME_TAKEN: { scimType: 'uniqueness' },
  ROSTER_GROUP_EXTERNAL_ID_TAKEN: { scimType: 'uniqueness' },
  ROSTER_NO_SUCH_MEMBER: { scimType: 'invalidValue', status: 400 },
  ROSTER_VALIDATION_FAILED: { scimType: 'invalidValue' },
  ROSTER_INVALID_BODY: { scimType: 'invalidSyntax' }
}

const TYPE = `${SCIM_JSON}; charset=utf-8`

/** RFC 7644 §3.12: an error as SCIM says, application/scim+json `{schemas, status, scimType, detail}`; triaged (logged) like every other error. */
export function scimErrorHandler (err: FastifyError & { scimType?: string }, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const answer = triageError(err, request, reply)
  const mapped = err.scimType === undefined ? SCIM_TYPES[answer.code] : { scimType: err.scimType }
  const status = mapped?.status ?? answer.status
  const detail = answer.errors === undefined ? answer.detail : answer.errors.map((e) => `${e.path}: ${e.message}`).join('; ')
  return reply.code(status).type(TYPE).send(scimErrorBody(status, detail, mapped?.scimType))
}

/**
 * What every route under /scim/v2 has in common: SCIM errors instead of
 * problem+json (also for a 401/403 of the authentication hook, a 404 of an
 * unknown path (routes/scim/v2/index.ts), a body that is not JSON), bodies as application/scim+json
 * (or application/json), answers as application/scim+json, the `scim` tag.
 */
export default async function (app: FastifyInstance): Promise<void> {
  app.setErrorHandler(scimErrorHandler)
  app.addContentTypeParser(SCIM_JSON, { parseAs: 'string' }, jsonParser(app))
  app.addHook('onRoute', (route) => { if (route.schema?.body !== undefined) route.schema = { ...route.schema, consumes: [SCIM_JSON, 'application/json'] } })
  app.addHook('onRoute', (route) => { (route.schema as { tags?: string[] }).tags ??= ['scim'] })
  app.addHook('onRequest', async (_request, reply) => { reply.type(TYPE) })
}
