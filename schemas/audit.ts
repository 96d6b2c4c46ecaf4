import { Type, type Static } from '@sinclair/typebox'
import { nullable, Timestamp, Uuid } from './common.ts'
import { pageQuery } from './paging.ts'

/** The audit log, as GET /audit-events shows it. */

export const AuditEvent = Type.Object({
  id: Uuid,
  actorType: nullable<'admin' | 'client'>({ type: 'string', enum: ['admin', 'client', null], description: 'What acted: `admin` or `client` (an API client); null for the system or an anonymous request (registration, password reset, an accepted invitation).' }),
  actorId: nullable<string>({ type: 'string', format: 'uuid', description: 'The acting admin or API client (actorType says which); null for the system or an anonymous request.' }),
  action: Type.String({ description: 'What happened: user.create, user.update, user.delete, user.import, group.create, group.update, group.delete, membership.add, membership.remove (target: the group; `changes.userId` the user), admin.register, admin.update, admin.delete, webhook.create, …' }),
  targetType: Type.String({ description: '`user`, `group`, `admin`, `invitation`, `client`, `webhook` or `import` (a bulk import of users).' }),
  targetId: Uuid,
  requestId: nullable<string>({ type: 'string', description: 'The X-Request-Id of the request that made the change.' }),
  changes: Type.Object({}, { additionalProperties: true, description: 'The fields changed, with their new values; secrets never appear (a password change reads `"[changed]"`).' }),
  createdAt: Timestamp()
}, { additionalProperties: false })
export type AuditEventView = Static<typeof AuditEvent>

/** Sorts of GET /audit-events (newest first by default). */
export const AUDIT_SORTS = ['createdAt'] as const

export const AuditListQuery = Type.Object({
  ...pageQuery(AUDIT_SORTS, '-createdAt'),
  actorId: Type.Optional(Type.String({ format: 'uuid', description: 'Only events by this admin or API client.' })),
  actorType: Type.Optional(Type.Union([Type.Literal('admin'), Type.Literal('client')], { description: 'Only events by admins, or by API clients.' })),
  targetId: Type.Optional(Type.String({ format: 'uuid', description: 'Only events about this user, group, admin, API client, webhook endpoint or import.' })),
  targetType: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('group'), Type.Literal('admin'), Type.Literal('invitation'), Type.Literal('client'), Type.Literal('webhook'), Type.Literal('import')], { description: 'Only events about users, groups (and their memberships), admins, invitations, API clients, webhook endpoints or bulk imports.' })),
  action: Type.Optional(Type.String({ pattern: '^[a-z_]{1,32}\\.[a-z_]{1,32}$', description: 'Only this action, e.g. `user.update`.' }))
}, { additionalProperties: false })
export type AuditListParams = Static<typeof AuditListQuery>
