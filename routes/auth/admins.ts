import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Admin, AdminId, AdminListQuery, AdminSummary, RoleChange } from '../../schemas/admins.ts'
import { bearer } from '../../schemas/common.ts'
import { pageHeaders } from '../../schemas/paging.ts'
import { problems } from '../../schemas/problem.ts'
import { setPageHeaders } from '../../src/infra/paging/links.ts'
import { actorOf } from '../../plugins/auth.ts'

/** GET /auth/admins (paged like /users); PATCH (role) and DELETE /auth/admins/{id}, owners only. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/admins', {
    config: { permission: 'admins:read' },
    schema: {
      summary: 'List admins, a page at a time',
      description: 'A JSON array paged by keyset cursor like GET /users: follow `Link: rel="next"`.',
      security: bearer,
      querystring: AdminListQuery,
      response: {
        200: { description: 'A page of admins', headers: pageHeaders, content: { 'application/json': { schema: Type.Array(AdminSummary) } } },
        ...problems(429)
      }
    }
  }, async (request, reply) => {
    const page = await app.admins.list(request.query)
    setPageHeaders(reply, app.admins.lister, request.url, request.query, page)
    return page.rows
  })

  app.patch('/admins/:id', {
    config: { permission: 'admins:write' },
    schema: {
      summary: 'Change an admin\'s role',
      description: 'Takes effect within 5 s on every instance (at once on this one). The last owner cannot be demoted (409).',
      security: bearer,
      params: AdminId,
      body: RoleChange,
      response: { 200: Admin, ...problems(404, 409, 429) }
    }
  }, async (request) => await app.admins.changeRole(actorOf(request), request.params.id, request.body.role))

  app.delete('/admins/:id', {
    config: { permission: 'admins:write' },
    schema: {
      summary: 'Remove an admin',
      description: 'Deletes the admin and ends their sessions (their access tokens stop working within 5 s); users they created stay, with createdBy null. The last owner cannot be removed (409).',
      security: bearer,
      params: AdminId,
      response: { 204: Type.Null({ description: 'Removed' }), ...problems(404, 409, 429) }
    }
  }, async (request, reply) => {
    await app.admins.remove(actorOf(request), request.params.id)
    return await reply.code(204).send(null)
  })
}
export default plugin
