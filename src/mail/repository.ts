import type { Database, Queryable } from '../infra/database.ts'

export type EmailTemplate = 'confirm_account' | 'confirm_email' | 'reset_password' | 'register_existing' | 'invitation' | 'webhook_disabled'

export interface EmailRequest {
  template: EmailTemplate
  /** Recipient address. */
  to: string
  /** Template data: `name` (the admin's name), `token` (the single-use token the link carries; none in a notice), what a notice is about. */
  data: { name: string, token: string } | { name: string, webhookId: string, url: string, hours: number }
}

/** Channel the dispatcher LISTENs on; NOTIFY is delivered when the inserting transaction commits. */
export const OUTBOX_CHANNEL = 'roster_email_outbox'

/** An outbox row claimed for one delivery try. */
export interface ClaimedEmail {
  id: string
  template: string
  recipient: string
  payload: Record<string, unknown>
  /** Tries made before this one. */
  attempts: number
}

/** The row and its NOTIFY in one statement (NOTIFY is delivered when the transaction commits). */
const ENQUEUE = {
  name: 'mail_enqueue',
  text: `WITH queued AS (INSERT INTO email_outbox (template, recipient, payload) VALUES ($1, $2, $3::jsonb))
    SELECT pg_notify('${OUTBOX_CHANNEL}', '')`
}
/**
 * Claims up to $1 due rows: locks them with FOR UPDATE SKIP LOCKED (rows another
 * instance is claiming are skipped, never waited for) and leases them by pushing
 * next_attempt_at $2 ms ahead, so that no other dispatcher takes them meanwhile.
 * Should this process die mid-send, the row becomes due again when the lease ends.
 */
const CLAIM = {
  name: 'mail_claim',
  text: `
    WITH due AS (
      SELECT id FROM email_outbox
      WHERE status = 'pending' AND next_attempt_at <= now()
      ORDER BY next_attempt_at
      LIMIT $1
      FOR UPDATE SKIP LOCKED
    )
    UPDATE email_outbox e SET next_attempt_at = now() + $2::float8 * interval '1 millisecond'
    FROM due WHERE e.id = due.id
    RETURNING e.id, e.template, e.recipient, e.payload, e.attempts`
}
// A row's final state: token material is erased from its payload.
const MARK_SENT = {
  name: 'mail_mark_sent',
  text: 'UPDATE email_outbox SET status = \'sent\', attempts = $2, sent_at = now(), provider_message_id = $3, last_error = NULL, payload = payload - \'token\' WHERE id = $1'
}
const MARK_FAILED = {
  name: 'mail_mark_failed',
  text: 'UPDATE email_outbox SET status = \'failed\', attempts = $2, last_error = $3, payload = payload - \'token\' WHERE id = $1'
}
const RESCHEDULE = {
  name: 'mail_reschedule',
  text: 'UPDATE email_outbox SET attempts = $2, last_error = $3, next_attempt_at = now() + $4::float8 * interval \'1 millisecond\' WHERE id = $1'
}
const DEPTH = {
  name: 'mail_depth',
  text: `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending, count(*) FILTER (WHERE status = 'failed')::int AS failed,
      coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')), 0)::float8 AS "oldestPendingSeconds"
    FROM email_outbox WHERE status <> 'sent'`
}

export interface OutboxDepth { pending: number, failed: number, oldestPendingSeconds: number }

/** The email outbox. Each function is one statement, so one short transaction (or part of the caller's). */
export function createOutboxRepository (db: Database) {
  return {
    /**
     * Queues an email in the transactional outbox. Call it with the transaction
     * that makes the change needing the email, so that both commit or neither.
     */
    async enqueue (tx: Queryable, email: EmailRequest): Promise<void> {
      await tx.query({ ...ENQUEUE, values: [email.template, email.to, JSON.stringify(email.data)] })
    },

    async claim (limit: number, leaseMs: number): Promise<ClaimedEmail[]> {
      return (await db.query<ClaimedEmail>({ ...CLAIM, values: [limit, leaseMs] })).rows
    },

    async markSent (id: string, attempts: number, providerMessageId: string | null): Promise<void> {
      await db.query({ ...MARK_SENT, values: [id, attempts, providerMessageId] })
    },

    async markFailed (id: string, attempts: number, error: string): Promise<void> {
      await db.query({ ...MARK_FAILED, values: [id, attempts, error] })
    },

    /** Leaves the row pending, due again in `delayMs`. */
    async reschedule (id: string, attempts: number, error: string, delayMs: number): Promise<void> {
      await db.query({ ...RESCHEDULE, values: [id, attempts, error, delayMs] })
    },

    /** Emails waiting and failed, and how long the oldest waiting one has waited (0 when none waits). */
    async depth (): Promise<OutboxDepth> {
      return (await db.query<OutboxDepth>(DEPTH)).rows[0] as OutboxDepth
    }
  }
}

export type OutboxRepository = ReturnType<typeof createOutboxRepository>
