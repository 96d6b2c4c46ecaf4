import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AdminListQuery, AdminSummary } from '../../schemas/admins.ts'
import { bearer } from '../../schemas/common.ts'
import { pageHeaders } from '../../schemas/paging.ts'
import { problems } from '../../schemas/problem.ts'
import { setPageHeaders } from '../../src/infra/paging/links.ts'

/** GET /auth/admins: authenticated, paged like /users. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/admins', {
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
}
export default plugin
