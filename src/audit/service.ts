import type { Database } from '../infra/database.ts'
import { AUDIT_INSERT, createAuditRepository } from './repository.ts'

export type { AuditAction, AuditEvent } from './repository.ts'

/**
 * The audit log: every create, update and delete of a user or an admin,
 * recorded by the domain that makes the change, in its transaction.
 */
export function createAuditService (db: Database, secretKey: string) {
  const repository = createAuditRepository(db, secretKey)
  return {
    lister: repository.lister,
    list: repository.list,
    record: repository.record,
    /** The INSERT of an audit row, for a domain that records its event in the change's own statement (users). */
    insertSql: AUDIT_INSERT
  }
}

export type AuditService = ReturnType<typeof createAuditService>
