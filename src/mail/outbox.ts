import { eq, sql } from 'drizzle-orm'
import type { NodePgDatabase } from 'drizzle-orm/node-postgres'
import type { PgUpdateSetSource } from 'drizzle-orm/pg-core'
import { emailOutbox } from '../../db/schema/outbox.ts'
import type { Database } from '../../plugins/db.ts'

export type EmailTemplate = 'confirm_account' | 'confirm_email' | 'reset_password'

export interface EmailRequest {
  template: EmailTemplate
  /** Recipient address. */
  to: string
  /** Template data: `name` (the admin's name) and `token` (the single-use token the link carries). */
  data: { name: string, token: string }
}

/** Channel the dispatcher LISTENs on; NOTIFY is delivered when the inserting transaction commits. */
export const OUTBOX_CHANNEL = 'roster_email_outbox'

/** A drizzle database or transaction (anything that runs queries). */
export type Queryable = Pick<NodePgDatabase<Record<string, unknown>>, 'insert' | 'execute'>

/**
 * Queues an email in the transactional outbox. Call it with the transaction
 * that makes the change needing the email, so that both commit or neither.
 */
export async function enqueueEmail (tx: Queryable, email: EmailRequest): Promise<void> {
  await tx.insert(emailOutbox).values({ template: email.template, recipient: email.to, payload: email.data })
  await tx.execute(sql`SELECT pg_notify(${OUTBOX_CHANNEL}, '')`)
}

/** An outbox row claimed for one delivery try. */
export interface ClaimedEmail {
  id: string
  template: string
  recipient: string
  payload: Record<string, unknown>
  /** Tries made before this one. */
  attempts: number
}

/** The dispatcher's queries on the outbox. Each is one statement, so one short transaction. */
export function createOutboxRepository (db: Database) {
  /** Sets a row's final state; token material is erased from its payload. */
  const finish = (id: string, values: PgUpdateSetSource<typeof emailOutbox>) =>
    db.update(emailOutbox).set({ ...values, payload: sql`${emailOutbox.payload} - 'token'` }).where(eq(emailOutbox.id, id))

  return {
    /**
     * Claims up to `limit` due rows: locks them with FOR UPDATE SKIP LOCKED (rows another
     * instance is claiming are skipped, never waited for) and leases them by pushing
     * next_attempt_at `leaseMs` ahead, so that no other dispatcher takes them meanwhile.
     * Should this process die mid-send, the row becomes due again when the lease ends.
     */
    async claim (limit: number, leaseMs: number): Promise<ClaimedEmail[]> {
      const { rows } = await db.execute<{ id: string, template: string, recipient: string, payload: Record<string, unknown>, attempts: number }>(sql`
        WITH due AS (
          SELECT id FROM email_outbox
          WHERE status = 'pending' AND next_attempt_at <= now()
          ORDER BY next_attempt_at
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED
        )
        UPDATE email_outbox e SET next_attempt_at = now() + ${leaseMs}::float8 * interval '1 millisecond'
        FROM due WHERE e.id = due.id
        RETURNING e.id, e.template, e.recipient, e.payload, e.attempts`)
      return rows
    },

    async markSent (id: string, attempts: number, providerMessageId: string | null): Promise<void> {
      await finish(id, { status: 'sent', attempts, sentAt: sql`now()`, providerMessageId, lastError: null })
    },

    async markFailed (id: string, attempts: number, error: string): Promise<void> {
      await finish(id, { status: 'failed', attempts, lastError: error })
    },

    /** Leaves the row pending, due again in `delayMs`. */
    async reschedule (id: string, attempts: number, error: string, delayMs: number): Promise<void> {
      await db.update(emailOutbox)
        .set({ attempts, lastError: error, nextAttemptAt: sql`now() + ${delayMs}::float8 * interval '1 millisecond'` })
        .where(eq(emailOutbox.id, id))
    },

    /** Emails waiting to be sent and emails given up on (for metrics). */
    async depth (): Promise<{ pending: number, failed: number }> {
      const { rows } = await db.execute<{ pending: number, failed: number }>(sql`
        SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending, count(*) FILTER (WHERE status = 'failed')::int AS failed
        FROM email_outbox WHERE status <> 'sent'`)
      return rows[0] as { pending: number, failed: number }
    }
  }
}

export type OutboxRepository = ReturnType<typeof createOutboxRepository>
