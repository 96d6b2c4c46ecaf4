import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { bearer } from '../../schemas/common.ts'
import { problems } from '../../schemas/problem.ts'
import { CreateHeaders, ReadHeaders, responses, UserCreate, UserId, UserListQuery, UserPatch, WriteHeaders } from '../../schemas/users.ts'
import { createUserHandlers } from './_handlers.ts'
import transfer from './_transfer.ts'

/** /users: the organisation's users. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const handlers = createUserHandlers(app)
  // Its own context: the NDJSON and CSV body parsers stay there.
  await app.register(transfer)

  app.get('/', {
    config: { permission: 'users:read' },
    schema: {
      tags: ['users'],
      summary: 'List users, a page at a time',
      description: 'A JSON array, paged by keyset cursor: follow the `Link: rel="next"` header until there is none. Filters combine with AND.',
      security: bearer,
      querystring: UserListQuery,
      response: { 200: responses.page }
    }
  }, async (request, reply) => await handlers.list(request, reply))

  app.post('/', {
    config: { permission: 'users:write' },
    schema: {
      tags: ['users'],
      summary: 'Create a user',
      security: bearer,
      headers: CreateHeaders,
      body: UserCreate,
      response: { 201: responses.created, ...problems(409, 422) }
    }
  }, async (request, reply) => await handlers.create(request, reply))

  app.get('/:id', {
    config: { permission: 'users:read' },
    schema: {
      tags: ['users'],
      summary: 'Get a user, with their groups',
      security: bearer,
      params: UserId,
      headers: ReadHeaders,
      response: { 200: responses.userWithGroups, 304: responses.notModified, ...problems(404) }
    }
  }, async (request, reply) => await handlers.read(request, reply, request.params.id, true))

  app.patch('/:id', {
    config: { permission: 'users:write' },
    schema: {
      tags: ['users'],
      summary: 'Change some fields of a user',
      security: bearer,
      params: UserId,
      headers: WriteHeaders,
      body: UserPatch,
      response: { 200: responses.user, ...problems(404, 409, 412, 428) }
    }
  }, async (request, reply) => await handlers.update(request, reply, request.params.id))

  app.delete('/:id', {
    config: { permission: 'users:write' },
    schema: {
      tags: ['users'],
      summary: 'Delete a user',
      security: bearer,
      params: UserId,
      headers: WriteHeaders,
      response: { 204: responses.noContent, ...problems(404, 412, 428) }
    }
  }, async (request, reply) => await handlers.remove(request, reply, request.params.id, 'no-content'))
}
export default plugin
