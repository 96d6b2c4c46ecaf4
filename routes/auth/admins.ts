import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problems } from '../../schemas/problem.ts'
import { ADMINS_LIST, createAdminsListing } from '../../src/admins-listing.ts'
import { pageHeaders, pagingQuerySchema, setPageHeaders } from '../../src/paging.ts'

/** What anyone with a token may see of an admin: never a password hash (the old service leaked passwords here). */
const AdminSummary = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String({ format: 'email' }),
  name: Type.String(),
  confirmed: Type.Boolean({ description: 'Whether the admin confirmed the account through the emailed link.' }),
  createdAt: Type.Unsafe<Date | string>({ type: 'string', format: 'date-time' })
}, { additionalProperties: false })

const Query = Type.Object(pagingQuerySchema(ADMINS_LIST), { additionalProperties: false })

/**
 * GET /auth/admins, in a file of its own (the rest of /auth is the admin
 * accounts' plugin): authenticated, paged like /users.
 */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const admins = createAdminsListing(app.db, app.secretKey)

  app.get('/admins', {
    config: { rateLimit: app.authRateLimit },
    schema: {
      tags: ['auth'],
      summary: 'List admins, a page at a time',
      description: 'A JSON array paged by keyset cursor like GET /users: follow `Link: rel="next"`.',
      security: [{ bearerAuth: [] }],
      querystring: Query,
      response: {
        200: { description: 'A page of admins', headers: pageHeaders, content: { 'application/json': { schema: Type.Array(AdminSummary) } } },
        ...problems(429)
      }
    }
  }, async (request, reply) => {
    const page = await admins.list(request.query)
    setPageHeaders(reply, admins.lister, request.url, request.query, page)
    return page.rows
  })
}
export default plugin
