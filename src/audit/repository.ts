import type { AuditEventView as AuditEventRow } from '../../schemas/audit.ts'
import type { Database, Queryable } from '../infra/database.ts'
import { createLister, CREATED_AT, type ListSpec, type Page, type PageQuery } from '../infra/paging/lister.ts'
import { utc } from '../infra/sql.ts'
import type { AUDIT_SORTS } from '../../schemas/audit.ts'

export type AuditAction =
  | 'user.create' | 'user.update' | 'user.delete'
  | 'group.create' | 'group.update' | 'group.delete' | 'membership.add' | 'membership.remove'
  | 'admin.register' | 'admin.register_attempt' | 'admin.confirm' | 'admin.update' | 'admin.email_change' | 'admin.password_change' | 'admin.password_reset' | 'admin.delete'
  | 'admin.role_change' | 'admin.mfa_enable' | 'admin.mfa_disable'
  | 'invitation.create' | 'invitation.revoke' | 'invitation.accept'
  | 'client.create' | 'client.delete' | 'client.secret_create' | 'client.secret_delete'
  | 'webhook.create' | 'webhook.update' | 'webhook.delete' | 'webhook.secret_rotate'
  | 'user.import'

export interface AuditEvent {
  /** Who acted: an admin or an API client; null for the system / an anonymous request (e.g. registration, password reset). */
  actor: { type: 'admin' | 'client', id: string } | null
  action: AuditAction
  targetType: 'user' | 'group' | 'admin' | 'invitation' | 'client' | 'webhook' | 'import'
  targetId: string
  requestId: string
  /** Changed fields with their new values. Never secrets: a password change is recorded as `{ password: '[changed]' }`. */
  changes: Record<string, unknown>
}

/**
 * THE audit writer's INSERT: `record()` below completes it with VALUES; the
 * users repository's single-statement writes complete it with a SELECT from
 * their data-modifying CTE (given it through the audit service).
 */
export const AUDIT_INSERT = 'INSERT INTO audit_events (actor_type, actor_id, action, target_type, target_id, request_id, changes)'
const RECORD = { name: 'audit_record', text: `${AUDIT_INSERT} VALUES ($1, $2, $3, $4, $5, $6, $7)` }

/**
 * GET /audit-events: newest first by default. The actor, target and action
 * filters each have an index on `(column, created_at, id)` (db/schema/audit.ts),
 * so a filtered page is one index range scan.
 */
export const AUDIT_LIST: ListSpec = {
  name: 'audit',
  from: 'audit_events',
  columns: `id, actor_type AS "actorType", actor_id AS "actorId", action, target_type AS "targetType", target_id AS "targetId", request_id AS "requestId", changes, ${utc('created_at')} AS "createdAt"`,
  sorts: { createdAt: CREATED_AT } satisfies Record<typeof AUDIT_SORTS[number], unknown>,
  defaultSort: '-createdAt',
  filters: {
    actorId: { sql: (p) => `actor_id = ${p}::uuid` },
    actorType: { sql: (p) => `actor_type = ${p}` },
    targetId: { sql: (p) => `target_id = ${p}::uuid` },
    targetType: { sql: (p) => `target_type = ${p}` },
    action: { sql: (p) => `action = ${p}` }
  }
}

/** Writes an audit event; call it with the transaction that makes the change, so both commit or neither. */
export async function recordAudit (tx: Queryable, event: AuditEvent): Promise<void> {
  await tx.query({ ...RECORD, values: [event.actor?.type ?? null, event.actor?.id ?? null, event.action, event.targetType, event.targetId, event.requestId, JSON.stringify(event.changes)] })
}

/** The audit_events table: written inside the change's own transaction, read a page at a time. */
export function createAuditRepository (db: Database, secretKey: string) {
  const lister = createLister<AuditEventRow>(AUDIT_LIST, secretKey)
  return {
    lister,
    list: async (query: PageQuery): Promise<Page<AuditEventRow>> => await lister.page(db, query),
    record: recordAudit
  }
}

export type AuditRepository = ReturnType<typeof createAuditRepository>
