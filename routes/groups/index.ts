import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { actorOf } from '../../plugins/auth.ts'
import { bearer } from '../../schemas/common.ts'
import { GroupCreate, GroupId, GroupListQuery, GroupPatch, groupResponses, MemberId } from '../../schemas/groups.ts'
import { problems } from '../../schemas/problem.ts'
import { ReadHeaders, responses, UserListQuery, WriteHeaders } from '../../schemas/users.ts'
import { errors } from '../../src/infra/errors.ts'
import { etag, noneMatchFails, writePreconditions } from '../../src/infra/etag.ts'
import { setPageHeaders } from '../../src/infra/paging/links.ts'
import { Type } from '@sinclair/typebox'

const tags = ['groups']
/** The members of a group: the users list's paging and sorts, without its filters. */
const MembersQuery = Type.Pick(UserListQuery, ['limit', 'cursor', 'sort', 'count'], { additionalProperties: false })

/**
 * /groups: groups of users, with the users' permissions (users:read to read,
 * users:write to change groups and memberships). ETag / If-Match as for users.
 */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const { groups, users } = app
  const requireIfMatch = app.config.REQUIRE_IF_MATCH
  const path = (url: string): string => url.split('?')[0] as string

  app.get('/', {
    config: { permission: 'users:read' },
    schema: {
      tags,
      summary: 'List groups, a page at a time',
      description: 'A JSON array, paged by keyset cursor: follow the `Link: rel="next"` header until there is none.',
      security: bearer,
      querystring: GroupListQuery,
      response: { 200: groupResponses.page }
    }
  }, async (request, reply) => {
    const page = await groups.list(request.query)
    setPageHeaders(reply, groups.repository.lister, request.url, request.query, page)
    return page.rows
  })

  app.post('/', {
    config: { permission: 'users:write' },
    schema: {
      tags,
      summary: 'Create a group',
      security: bearer,
      body: GroupCreate,
      response: { 201: groupResponses.created, ...problems(409) }
    }
  }, async (request, reply) => {
    const group = await groups.create(request.body, actorOf(request))
    reply.code(201).headers({ location: `/groups/${group.id}`, etag: etag(group) })
    return group
  })

  app.get('/:id', {
    config: { permission: 'users:read' },
    schema: {
      tags,
      summary: 'Get a group',
      security: bearer,
      params: GroupId,
      headers: ReadHeaders,
      response: { 200: groupResponses.group, 304: groupResponses.notModified, ...problems(404) }
    }
  }, async (request, reply) => {
    const group = await groups.get(request.params.id)
    if (group === null) throw new errors.NotFound(`No group with id ${request.params.id}`)
    const tag = etag(group)
    reply.header('etag', tag)
    if (noneMatchFails(request.headers['if-none-match'], tag)) return await reply.code(304).send()
    return group
  })

  app.patch('/:id', {
    config: { permission: 'users:write' },
    schema: {
      tags,
      summary: 'Change the name or description of a group',
      security: bearer,
      params: GroupId,
      headers: WriteHeaders,
      body: GroupPatch,
      response: { 200: groupResponses.group, ...problems(404, 409, 412, 428) }
    }
  }, async (request, reply) => {
    const { id } = request.params
    const group = await groups.update(id, request.body, writePreconditions(request.headers['if-match'], id, requireIfMatch, 'group'), actorOf(request))
    reply.header('etag', etag(group))
    return group
  })

  app.delete('/:id', {
    config: { permission: 'users:write' },
    schema: {
      tags,
      summary: 'Delete a group (its members stay users)',
      security: bearer,
      params: GroupId,
      headers: WriteHeaders,
      response: { 204: groupResponses.noContent, ...problems(404, 412, 428) }
    }
  }, async (request, reply) => {
    const { id } = request.params
    await groups.remove(id, writePreconditions(request.headers['if-match'], id, requireIfMatch, 'group'), actorOf(request))
    return await reply.code(204).send()
  })

  app.get('/:id/members', {
    config: { permission: 'users:read' },
    schema: {
      tags,
      summary: 'List the members of a group, a page at a time',
      description: 'The users in the group, as GET /users shows them, paged by keyset cursor (`Link: rel="next"`). Same as `GET /users?group={id}`.',
      security: bearer,
      params: GroupId,
      querystring: MembersQuery,
      response: { 200: responses.page, ...problems(404) }
    }
  }, async (request, reply) => {
    const { id } = request.params
    if (await groups.get(id) === null) throw new errors.NotFound(`No group with id ${id}`)
    // The cursor is bound to the group (a filter of the users list); the next link needs no `group`, the path names it.
    const page = await users.list({ ...request.query, group: id })
    setPageHeaders(reply, users.repository.lister, path(request.url), request.query, page)
    return page.rows
  })

  app.put('/:id/members/:userId', {
    config: { permission: 'users:write' },
    schema: {
      tags,
      summary: 'Add a user to a group',
      description: 'Idempotent: 204 whether the user was added or already a member.',
      security: bearer,
      params: MemberId,
      response: { 204: groupResponses.noContent, ...problems(404) }
    }
  }, async (request, reply) => {
    await groups.addMember(request.params.id, request.params.userId, actorOf(request))
    return await reply.code(204).send()
  })

  app.delete('/:id/members/:userId', {
    config: { permission: 'users:write' },
    schema: {
      tags,
      summary: 'Remove a user from a group',
      description: '404 when the group does not exist or the user is not in it.',
      security: bearer,
      params: MemberId,
      response: { 204: groupResponses.noContent, ...problems(404) }
    }
  }, async (request, reply) => {
    await groups.removeMember(request.params.id, request.params.userId, actorOf(request))
    return await reply.code(204).send()
  })
}
export default plugin
