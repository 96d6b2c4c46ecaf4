import { sql } from 'drizzle-orm'
import { pgTable, uuid, text, timestamp, integer, jsonb, index, primaryKey } from 'drizzle-orm/pg-core'

/** Every create/update/delete of a user or admin, written in the same transaction as the change. */
export const auditEvents = pgTable('audit_events', {
  id: uuid().primaryKey().default(sql`roster_uuid_v7()`),
  /** What acted: admin | client (an API client); null for system actions and anonymous requests. */
  actorType: text(),
  /** The acting admin or API client (actorType says which); kept (no foreign key) after it is deleted. Null for system actions. */
  actorId: uuid(),
  /** e.g. user.create, user.update, user.delete, admin.register, admin.update, admin.delete */
  action: text().notNull(),
  /** user | admin */
  targetType: text().notNull(),
  targetId: uuid().notNull(),
  requestId: text(),
  /** Changed field names with their new values; secrets are never stored. */
  changes: jsonb().$type<Record<string, unknown>>().notNull().default({}),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow()
}, (t) => [
  index('audit_events_created_at_id_idx').on(t.createdAt, t.id),
  index('audit_events_actor_idx').on(t.actorId, t.createdAt, t.id),
  index('audit_events_target_idx').on(t.targetId, t.createdAt, t.id),
  index('audit_events_action_idx').on(t.action, t.createdAt, t.id)
])

/**
 * Idempotency-Key records for POST /users, scoped to the admin. A row with a
 * null status is in flight; the unique key makes a racing duplicate wait for
 * the first transaction and then replay its stored response.
 */
export const idempotencyKeys = pgTable('idempotency_keys', {
  adminId: uuid().notNull(),
  key: text().notNull(),
  /** HMAC (SECRET_KEY) of method, path and body. */
  fingerprint: text().notNull(),
  statusCode: integer(),
  responseHeaders: jsonb().$type<Record<string, string>>(),
  responseBody: text(),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  expiresAt: timestamp({ withTimezone: true, mode: 'date' }).notNull()
}, (t) => [
  primaryKey({ columns: [t.adminId, t.key] }),
  index('idempotency_keys_expires_at_idx').on(t.expiresAt)
])
