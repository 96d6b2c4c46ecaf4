import { sql } from 'drizzle-orm'
import { pgTable, uuid, text, timestamp, integer, bigint, jsonb, index, boolean } from 'drizzle-orm/pg-core'
import { admins } from './admins.ts'

/**
 * Webhook endpoints: where events are sent, which ones, and the signing secret
 * (sealed with SECRET_KEY, src/infra/secret-box.ts; the previous one kept for a
 * while after a rotation, both sign meanwhile).
 */
export const webhookEndpoints = pgTable('webhook_endpoints', {
  id: uuid().primaryKey().default(sql`gen_random_uuid()`),
  url: text().notNull(),
  description: text().notNull().default(''),
  /** Event types sent to this endpoint (user.created, …). */
  events: text().array().notNull(),
  secret: text().notNull(),
  previousSecret: text(),
  previousSecretExpiresAt: timestamp({ withTimezone: true, mode: 'date' }),
  enabled: boolean().notNull().default(true),
  /** Why the endpoint was disabled by the dispatcher (null: enabled, or disabled by an owner). */
  disabledReason: text(),
  /** Start of the current run of failed attempts; null after a success. */
  failingSince: timestamp({ withTimezone: true, mode: 'date' }),
  /** The owner who created it: emailed when it is disabled (null once deleted: every owner is). */
  createdBy: uuid().references(() => admins.id, { onDelete: 'set null' }),
  version: integer().notNull().default(1),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow()
}, (t) => [
  index('webhook_endpoints_created_at_id_idx').on(t.createdAt, t.id)
])

/**
 * The webhook outbox: one row per event and endpoint, inserted in the
 * transaction of the change. `seq` orders the events of one resource; the
 * dispatcher sends a row only when no earlier row of the same endpoint and
 * resource is pending. `message_id` is the webhook-id (the same on a retry and a replay).
 */
export const webhookDeliveries = pgTable('webhook_deliveries', {
  id: uuid().primaryKey().default(sql`roster_uuid_v7()`),
  seq: bigint({ mode: 'number' }).generatedAlwaysAsIdentity().notNull(),
  endpointId: uuid().notNull().references(() => webhookEndpoints.id, { onDelete: 'cascade' }),
  messageId: uuid().notNull(),
  eventType: text().notNull(),
  /** The resource the event is about (a user's, an admin's id); ordering is per resource. */
  resourceId: text().notNull(),
  /** The JSON body sent: `{ type, timestamp, data }`. */
  payload: jsonb().$type<Record<string, unknown>>().notNull(),
  /** pending | delivered | failed */
  status: text().notNull().default('pending'),
  attempts: integer().notNull().default(0),
  nextAttemptAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  /** When it was delivered, or given up on. */
  finishedAt: timestamp({ withTimezone: true, mode: 'date' })
}, (t) => [
  index('webhook_deliveries_due_idx').on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
  index('webhook_deliveries_order_idx').on(t.endpointId, t.resourceId, t.seq).where(sql`${t.status} = 'pending'`),
  index('webhook_deliveries_endpoint_created_at_id_idx').on(t.endpointId, t.createdAt, t.id),
  index('webhook_deliveries_finished_at_idx').on(t.finishedAt).where(sql`${t.status} <> 'pending'`)
])

/** Each try of a delivery: when, how long, the response's status and the start of its body, or the error. */
export const webhookAttempts = pgTable('webhook_attempts', {
  id: uuid().primaryKey().default(sql`roster_uuid_v7()`),
  deliveryId: uuid().notNull().references(() => webhookDeliveries.id, { onDelete: 'cascade' }),
  attemptedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  durationMs: integer().notNull(),
  statusCode: integer(),
  /** The response body's first 1 KiB. */
  response: text(),
  error: text()
}, (t) => [
  index('webhook_attempts_delivery_id_idx').on(t.deliveryId, t.attemptedAt)
])
