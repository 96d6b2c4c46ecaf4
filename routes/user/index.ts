import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { bearer } from '../../schemas/common.ts'
import { problems } from '../../schemas/problem.ts'
import { CreateHeaders, ReadHeaders, responses, UserCreate, UserPatch, WriteHeaders } from '../../schemas/users.ts'
import { createUserHandlers } from '../users/_handlers.ts'

const tags = ['compatibility']
const IdQuery = Type.Object({ id: Type.String({ format: 'uuid', description: 'The user\'s id.' }) }, { additionalProperties: false })

/**
 * The replaced service's /user routes, kept working with the same handlers as
 * /users/{id} and marked deprecated. PUT is a partial update; DELETE answers
 * 200 with the deleted user, as before. A missing or malformed id is a 400.
 */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const handlers = createUserHandlers(app)

  app.get('/', {
    config: { permission: 'users:read' },
    schema: {
      tags,
      summary: 'Get a user (use GET /users/{id})',
      deprecated: true,
      security: bearer,
      querystring: IdQuery,
      headers: ReadHeaders,
      response: { 200: responses.user, 304: responses.notModified, ...problems(404) }
    }
  }, async (request, reply) => await handlers.read(request, reply, request.query.id))

  app.post('/', {
    config: { permission: 'users:write' },
    schema: {
      tags,
      summary: 'Create a user (use POST /users)',
      deprecated: true,
      security: bearer,
      headers: CreateHeaders,
      body: UserCreate,
      response: { 201: responses.created, ...problems(409, 422) }
    }
  }, async (request, reply) => await handlers.create(request, reply))

  app.put('/', {
    config: { permission: 'users:write' },
    schema: {
      tags,
      summary: 'Change some fields of a user (use PATCH /users/{id})',
      deprecated: true,
      security: bearer,
      querystring: IdQuery,
      headers: WriteHeaders,
      body: UserPatch,
      response: { 200: responses.user, ...problems(404, 409, 412, 428) }
    }
  }, async (request, reply) => await handlers.update(request, reply, request.query.id))

  app.delete('/', {
    config: { permission: 'users:write' },
    schema: {
      tags,
      summary: 'Delete a user, answering it (use DELETE /users/{id})',
      deprecated: true,
      security: bearer,
      querystring: IdQuery,
      headers: WriteHeaders,
      response: { 200: responses.deleted, ...problems(404, 412, 428) }
    }
  }, async (request, reply) => await handlers.remove(request, reply, request.query.id, 'deleted-user'))
}
export default plugin
