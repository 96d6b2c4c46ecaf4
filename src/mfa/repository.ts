import type { Database, Queryable } from '../infra/database.ts'

export interface TotpState { email: string, secret: string | null, enabled: boolean, lastStep: number | null }

const READ = { name: 'mfa_read', text: 'SELECT email, totp_secret AS secret, totp_enabled_at IS NOT NULL AS enabled, totp_last_step::float8 AS "lastStep" FROM admins WHERE id = $1' }
const START = { name: 'mfa_start', text: 'UPDATE admins SET totp_secret = $2, totp_last_step = NULL WHERE id = $1 AND totp_enabled_at IS NULL RETURNING id' }
/** Activation: only the secret the code was checked against ($3), and only while not active. */
const ACTIVATE = {
  name: 'mfa_activate',
  text: 'UPDATE admins SET totp_enabled_at = now(), totp_last_step = $2, updated_at = now() WHERE id = $1 AND totp_enabled_at IS NULL AND totp_secret = $3 RETURNING id'
}
/** A code used up: accepted only when its step is newer than the last accepted one (no replay). */
const USE_STEP = {
  name: 'mfa_use_step',
  text: 'UPDATE admins SET totp_last_step = $2 WHERE id = $1 AND totp_enabled_at IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING id'
}
const USE_RECOVERY = { name: 'mfa_use_recovery', text: 'UPDATE mfa_recovery_codes SET used_at = now() WHERE admin_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING admin_id' }
const DELETE_CODES = { name: 'mfa_delete_codes', text: 'DELETE FROM mfa_recovery_codes WHERE admin_id = $1' }
const INSERT_CODES = { name: 'mfa_insert_codes', text: 'INSERT INTO mfa_recovery_codes (code_hash, admin_id) SELECT unnest($2::text[]), $1' }
const DISABLE = { name: 'mfa_disable', text: 'UPDATE admins SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL, updated_at = now() WHERE id = $1' }

/** The admins' TOTP columns and the recovery codes; each function one named statement, on the pool or the caller's `tx`. */
export function createMfaRepository (db: Database) {
  return {
    async read (adminId: string, tx: Queryable = db): Promise<TotpState | null> {
      /* c8 ignore next -- null only for an admin deleted since its session check (see the service) */
      return (await tx.query<TotpState>({ ...READ, values: [adminId] })).rows[0] ?? null
    },
    /** Stores a new pending secret; false when TOTP is already active. */
    async start (adminId: string, sealed: string): Promise<boolean> {
      return (await db.query({ ...START, values: [adminId, sealed] })).rows.length === 1
    },
    async activate (tx: Queryable, adminId: string, step: number, sealed: string): Promise<boolean> {
      return (await tx.query({ ...ACTIVATE, values: [adminId, step, sealed] })).rows.length === 1
    },
    async useStep (tx: Queryable, adminId: string, step: number): Promise<boolean> {
      return (await tx.query({ ...USE_STEP, values: [adminId, step] })).rows.length === 1
    },
    async useRecoveryCode (tx: Queryable, adminId: string, codeHash: string): Promise<boolean> {
      return (await tx.query({ ...USE_RECOVERY, values: [adminId, codeHash] })).rows.length === 1
    },
    async replaceRecoveryCodes (tx: Queryable, adminId: string, hashes: string[]): Promise<void> {
      await tx.query({ ...DELETE_CODES, values: [adminId] })
      await tx.query({ ...INSERT_CODES, values: [adminId, hashes] })
    },
    async disable (tx: Queryable, adminId: string): Promise<void> {
      await tx.query({ ...DISABLE, values: [adminId] })
      await tx.query({ ...DELETE_CODES, values: [adminId] })
    }
  }
}
