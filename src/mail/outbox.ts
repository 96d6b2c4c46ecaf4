import { sql } from 'drizzle-orm'
import type { NodePgDatabase } from 'drizzle-orm/node-postgres'
import { emailOutbox } from '../../db/schema/outbox.ts'

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
