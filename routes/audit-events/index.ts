import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problems } from '../../schemas/problem.ts'
import { AUDIT_EVENTS_LIST, createAuditEventsRepository } from '../../src/audit-events.ts'
import { pageHeaders, pagingQuerySchema, setPageHeaders } from '../../src/paging.ts'

const Uuid = Type.String({ format: 'uuid' })
const nullable = (schema: Record<string, unknown>) => Type.Unsafe<string | null>({ ...schema, type: ['string', 'null'] })

const AuditEvent = Type.Object({
  id: Uuid,
  actorId: nullable({ type: 'string', format: 'uuid', description: 'The acting admin; null for the system or an anonymous request (registration, password reset).' }),
  action: Type.String({ description: 'What happened: user.create, user.update, user.delete, admin.register, admin.update, admin.delete, …' }),
  targetType: Type.String({ description: '`user` or `admin`.' }),
  targetId: Uuid,
  requestId: nullable({ type: 'string', description: 'The X-Request-Id of the request that made the change.' }),
  changes: Type.Object({}, { additionalProperties: true, description: 'The fields changed, with their new values; secrets never appear (a password change reads `"[changed]"`).' }),
  createdAt: Type.Unsafe<Date | string>({ type: 'string', format: 'date-time' })
}, { additionalProperties: false })

const Query = Type.Object({
  ...pagingQuerySchema(AUDIT_EVENTS_LIST),
  actorId: Type.Optional(Type.String({ format: 'uuid', description: 'Only events by this admin.' })),
  targetId: Type.Optional(Type.String({ format: 'uuid', description: 'Only events about this user or admin.' })),
  targetType: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('admin')], { description: 'Only events about users or about admins.' })),
  action: Type.Optional(Type.String({ pattern: '^[a-z_]{1,32}\\.[a-z_]{1,32}$', description: 'Only this action, e.g. `user.update`.' }))
}, { additionalProperties: false })

/** /audit-events: the audit log, newest first, paged like /users. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const events = createAuditEventsRepository(app.db, app.secretKey)

  app.get('/', {
    schema: {
      tags: ['audit'],
      summary: 'List audit events, a page at a time',
      description: 'Every create, update and delete of a user or an admin, written in the same transaction as the change. Paged by keyset cursor like GET /users; filters combine with AND.',
      security: [{ bearerAuth: [] }],
      querystring: Query,
      response: {
        200: { description: 'A page of audit events', headers: pageHeaders, content: { 'application/json': { schema: Type.Array(AuditEvent) } } },
        ...problems()
      }
    }
  }, async (request, reply) => {
    const page = await events.list(request.query)
    setPageHeaders(reply, events.lister, request.url, request.query, page)
    return page.rows
  })
}
export default plugin
