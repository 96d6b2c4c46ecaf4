import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { actorOf } from '../../../plugins/auth.ts'
import { bearer } from '../../../schemas/common.ts'
import { SCIM_BODY_LIMIT, ScimBody, scimErrors, ScimId, ScimListQuery, ScimProjection, scimResponses, ScimWriteHeaders } from '../../../schemas/scim.ts'
import { matchingVersions } from '../../../src/infra/etag.ts'
import { project, SCHEMAS } from '../../../src/scim/resources.ts'

const config = { permission: 'scim' as const }
/** SCIM writes may name many members at once (a group's PUT or PATCH): up to 1 MiB, not BODY_LIMIT. */
const bodyLimit = SCIM_BODY_LIMIT

/** SCIM Users (RFC 7644 §3): the organisation's users, through the users service. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const { scim } = app

  app.get('/Users', {
    config,
    schema: {
      summary: 'List or search users (filter, sortBy, startIndex, count)',
      security: bearer,
      querystring: ScimListQuery,
      response: { 200: scimResponses.users, ...scimErrors() }
    }
  }, async (request) => await scim.listUsers(request.query))

  app.post('/Users', {
    config,
    bodyLimit,
    schema: { summary: 'Create a user', security: bearer, body: ScimBody, response: { 201: scimResponses.userCreated, ...scimErrors(409) } }
  }, async (request, reply) => {
    const user = await scim.createUser(request.body, actorOf(request))
    reply.code(201).headers({ location: user.meta.location, etag: user.meta.version })
    return user
  })

  app.get('/Users/:id', {
    config,
    schema: { summary: 'Get a user', security: bearer, params: ScimId, querystring: ScimProjection, response: { 200: scimResponses.user, ...scimErrors(404) } }
  }, async (request, reply) => {
    const user = await scim.getUser(request.params.id)
    reply.header('etag', user.meta.version)
    return project(user, SCHEMAS.user, request.query.attributes?.split(',') ?? null, request.query.excludedAttributes?.split(',') ?? null)
  })

  app.put('/Users/:id', {
    config,
    bodyLimit,
    schema: { summary: 'Replace a user', security: bearer, params: ScimId, headers: ScimWriteHeaders, body: ScimBody, response: { 200: scimResponses.user, ...scimErrors(404, 409, 412) } }
  }, async (request, reply) => {
    const { id } = request.params
    const user = await scim.replaceUser(id, request.body, matchingVersions(request.headers['if-match'], id), actorOf(request))
    reply.header('etag', user.meta.version)
    return user
  })

  app.patch('/Users/:id', {
    config,
    bodyLimit,
    schema: { summary: 'Change a user (PatchOp: add, replace, remove)', security: bearer, params: ScimId, headers: ScimWriteHeaders, body: ScimBody, response: { 200: scimResponses.user, ...scimErrors(404, 409, 412) } }
  }, async (request, reply) => {
    const { id } = request.params
    const user = await scim.patchUser(id, request.body, matchingVersions(request.headers['if-match'], id), actorOf(request))
    reply.header('etag', user.meta.version)
    return user
  })

  app.delete('/Users/:id', {
    config,
    schema: { summary: 'Delete a user', security: bearer, params: ScimId, headers: ScimWriteHeaders, response: { 204: scimResponses.noContent, ...scimErrors(404, 412) } }
  }, async (request, reply) => {
    const { id } = request.params
    await scim.deleteUser(id, matchingVersions(request.headers['if-match'], id), actorOf(request))
    return await reply.code(204).send()
  })
}
export default plugin
