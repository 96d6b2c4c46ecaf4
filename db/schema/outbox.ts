import { sql } from 'drizzle-orm'
import { pgTable, uuid, text, timestamp, integer, jsonb, index } from 'drizzle-orm/pg-core'

/**
 * Transactional outbox for email. A row is inserted in the same transaction as
 * the change that needs the email; the dispatcher claims due rows with
 * FOR UPDATE SKIP LOCKED, leases them by pushing next_attempt_at forward, sends,
 * and marks them sent (erasing token material from payload) or failed.
 */
export const emailOutbox = pgTable('email_outbox', {
  id: uuid().primaryKey().default(sql`roster_uuid_v7()`),
  /** Template name: confirm_account | confirm_email | reset_password | register_existing. */
  template: text().notNull(),
  recipient: text().notNull(),
  /** Template data (name, token, ...). `token` is removed once sent or failed. */
  payload: jsonb().$type<Record<string, unknown>>().notNull(),
  /** pending | sent | failed */
  status: text().notNull().default('pending'),
  attempts: integer().notNull().default(0),
  nextAttemptAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  lastError: text(),
  providerMessageId: text(),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  sentAt: timestamp({ withTimezone: true, mode: 'date' })
}, (t) => [
  index('email_outbox_due_idx').on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
  // The pruning job's way to sent and failed rows past OUTBOX_RETENTION_DAYS.
  index('email_outbox_done_idx').on(t.createdAt).where(sql`${t.status} <> 'pending'`)
])
