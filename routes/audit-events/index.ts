import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AuditEvent, AuditListQuery } from '../../schemas/audit.ts'
import { bearer } from '../../schemas/common.ts'
import { pageHeaders } from '../../schemas/paging.ts'
import { problems } from '../../schemas/problem.ts'
import { setPageHeaders } from '../../src/infra/paging/links.ts'

/** /audit-events: the audit log, newest first, paged like /users. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/', {
    config: { permission: 'audit:read' },
    schema: {
      tags: ['audit'],
      summary: 'List audit events, a page at a time',
      description: 'Every create, update and delete of a user or an admin, written in the same transaction as the change. Paged by keyset cursor like GET /users; filters combine with AND.',
      security: bearer,
      querystring: AuditListQuery,
      response: {
        200: { description: 'A page of audit events', headers: pageHeaders, content: { 'application/json': { schema: Type.Array(AuditEvent) } } },
        ...problems()
      }
    }
  }, async (request, reply) => {
    const page = await app.audit.list(request.query)
    setPageHeaders(reply, app.audit.lister, request.url, request.query, page)
    return page.rows
  })
}
export default plugin
