import type { NodePgDatabase } from 'drizzle-orm/node-postgres'
import { auditEvents } from '../db/schema/audit.ts'

export type AuditAction =
  | 'user.create' | 'user.update' | 'user.delete'
  | 'admin.register' | 'admin.confirm' | 'admin.update' | 'admin.email_change' | 'admin.password_change' | 'admin.password_reset' | 'admin.delete'

export interface AuditEvent {
  /** The acting admin, or null for the system / an anonymous request (e.g. registration, password reset). */
  actorId: string | null
  action: AuditAction
  targetType: 'user' | 'admin'
  targetId: string
  requestId: string
  /** Changed fields with their new values. Never secrets: a password change is recorded as `{ password: '[changed]' }`. */
  changes: Record<string, unknown>
}

/** Writes an audit event; call it with the transaction that makes the change, so both commit or neither. */
export async function recordAudit (tx: Pick<NodePgDatabase<Record<string, unknown>>, 'insert'>, event: AuditEvent): Promise<void> {
  await tx.insert(auditEvents).values(event)
}
