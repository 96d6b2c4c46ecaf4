import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { actorOf } from '../../../plugins/auth.ts'
import { bearer } from '../../../schemas/common.ts'
import { SCIM_BODY_LIMIT, ScimBody, scimErrors, ScimId, ScimListQuery, ScimProjection, scimResponses, ScimWriteHeaders } from '../../../schemas/scim.ts'
import { etag, matchingVersions } from '../../../src/infra/etag.ts'

const config = { permission: 'scim' as const }
/** SCIM writes may name many members at once (a group's PUT or PATCH): up to 1 MiB, not BODY_LIMIT. */
const bodyLimit = SCIM_BODY_LIMIT

/** SCIM Groups (RFC 7644 §3): groups and their members, through the groups service. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const { scim } = app

  app.get('/Groups', {
    config,
    schema: {
      summary: 'List or search groups (filter, sortBy, startIndex, count; excludedAttributes=members for large groups)',
      security: bearer,
      querystring: ScimListQuery,
      response: { 200: scimResponses.groups, ...scimErrors() }
    }
  }, async (request) => await scim.listGroups(request.query))

  app.post('/Groups', {
    config,
    bodyLimit,
    schema: { summary: 'Create a group (with members)', security: bearer, body: ScimBody, response: { 201: scimResponses.groupCreated, ...scimErrors(409) } }
  }, async (request, reply) => {
    const group = await scim.createGroup(request.body, actorOf(request))
    reply.code(201).headers({ location: group.meta.location, etag: group.meta.version })
    return group
  })

  app.get('/Groups/:id', {
    config,
    schema: { summary: 'Get a group', security: bearer, params: ScimId, querystring: ScimProjection, response: { 200: scimResponses.group, ...scimErrors(404) } }
  }, async (request, reply) => {
    const group = await scim.getGroup(request.params.id, request.query)
    if (group.meta !== undefined) reply.header('etag', group.meta.version)
    return group
  })

  app.put('/Groups/:id', {
    config,
    bodyLimit,
    schema: { summary: 'Replace a group, its members too', security: bearer, params: ScimId, headers: ScimWriteHeaders, body: ScimBody, response: { 200: scimResponses.group, ...scimErrors(404, 409, 412) } }
  }, async (request, reply) => {
    const { id } = request.params
    const group = await scim.replaceGroup(id, request.body, matchingVersions(request.headers['if-match'], id), actorOf(request))
    reply.header('etag', group.meta.version)
    return group
  })

  app.patch('/Groups/:id', {
    config,
    bodyLimit,
    schema: {
      summary: 'Change a group (PatchOp: displayName, externalId, members add / remove / replace)',
      description: 'Answers 204 with the new ETag, without the group (its members may be many): GET it when needed.',
      security: bearer,
      params: ScimId,
      headers: ScimWriteHeaders,
      body: ScimBody,
      response: { 204: scimResponses.noContent, ...scimErrors(404, 409, 412) }
    }
  }, async (request, reply) => {
    const { id } = request.params
    const group = await scim.patchGroup(id, request.body, matchingVersions(request.headers['if-match'], id), actorOf(request))
    return await reply.code(204).header('etag', etag(group)).send()
  })

  app.delete('/Groups/:id', {
    config,
    schema: { summary: 'Delete a group (its members stay users)', security: bearer, params: ScimId, headers: ScimWriteHeaders, response: { 204: scimResponses.noContent, ...scimErrors(404, 412) } }
  }, async (request, reply) => {
    const { id } = request.params
    await scim.deleteGroup(id, matchingVersions(request.headers['if-match'], id), actorOf(request))
    return await reply.code(204).send()
  })
}
export default plugin
