import type { Pool } from 'pg'
import { createLister, type ListSpec, type Page, type PageQuery } from './paging.ts'

export interface AuditEventRow {
  id: string
  actorId: string | null
  action: string
  targetType: string
  targetId: string
  requestId: string | null
  changes: Record<string, unknown>
  createdAt: Date
}

/**
 * GET /audit-events: newest first by default. The actor, target and action
 * filters each have an index on `(column, created_at, id)` (db/schema/audit.ts),
 * so a filtered page is one index range scan.
 */
export const AUDIT_EVENTS_LIST: ListSpec = {
  name: 'audit',
  from: 'audit_events',
  columns: 'id, actor_id AS "actorId", action, target_type AS "targetType", target_id AS "targetId", request_id AS "requestId", changes, created_at AS "createdAt"',
  id: 'id',
  sorts: {
    createdAt: { expr: 'created_at', type: 'timestamptz', key: 'created_at::text' }
  },
  defaultSort: '-createdAt',
  filters: {
    actorId: { sql: (p) => `actor_id = ${p}::uuid` },
    targetId: { sql: (p) => `target_id = ${p}::uuid` },
    targetType: { sql: (p) => `target_type = ${p}` },
    action: { sql: (p) => `action = ${p}` }
  }
}

/** Reading the audit log (written by src/audit.ts and the users repository, always inside the change's transaction). */
export function createAuditEventsRepository (db: { $client: Pool }, secretKey: string) {
  const lister = createLister<AuditEventRow>(AUDIT_EVENTS_LIST, secretKey)
  return {
    lister,
    list: async (query: PageQuery): Promise<Page<AuditEventRow>> => await lister.page(db.$client, query)
  }
}
