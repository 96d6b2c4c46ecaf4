import type { ADMIN_SORTS, AdminView, Role } from '../../schemas/admins.ts'
import { hashToken, randomToken } from '../infra/crypto.ts'
import { violations, type Database, type Queryable } from '../infra/database.ts'
import { CREATED_AT, textSort, type ListSpec } from '../infra/paging/lister.ts'
import { iso, utc } from '../infra/sql.ts'
import { adminsErrors } from './errors.ts'

/** An admin as the service reads it: what the API shows, plus the password hash (never answered). */
export type AdminRow = AdminView & { passwordHash: string }

export type TokenPurpose = 'confirm_account' | 'confirm_email' | 'reset_password'

export interface TokenUse {
  adminId: string
  purpose: TokenPurpose
  email: string | null
}

/** What an update may change; `undefined` leaves a column alone. */
export interface AdminChange {
  name?: string
  email?: string
  /** null clears it. */
  pendingEmail?: string | null
  passwordHash?: string
  /** Confirms the account (keeps the first confirmation time). */
  confirm?: true
}

/** Lifetimes of emailed tokens, in seconds: 24 h to confirm, 1 h to reset a password. */
export const TOKEN_TTL: Record<TokenPurpose, number> = {
  confirm_account: 24 * 3600,
  confirm_email: 24 * 3600,
  reset_password: 3600
}

const COLUMNS = `id, email, name, password_hash AS "passwordHash", confirmed_at IS NOT NULL AS confirmed, pending_email AS "pendingEmail",
  role, totp_enabled_at IS NOT NULL AS mfa, ${iso('created_at')} AS "createdAt", ${iso('updated_at')} AS "updatedAt"`

const INSERT = {
  name: 'admins_insert',
  text: `INSERT INTO admins (email, name, password_hash, confirmed_at, role) VALUES ($1, $2, $3, CASE WHEN $4::boolean THEN now() END, $5) RETURNING ${COLUMNS}`
}
/**
 * A registration in one statement: inserts the admin unless an admin has the
 * email (whose row is then locked and returned, with whether the name is
 * taken too). A taken name with a free email raises the name's unique violation.
 */
const REGISTER = {
  name: 'admins_register',
  text: `WITH existing AS (
      SELECT id, email, name FROM admins WHERE lower(email) = lower($1) FOR UPDATE
    ), created AS (
      INSERT INTO admins (email, name, password_hash, role) SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM existing)
      RETURNING ${COLUMNS}
    )
    SELECT (SELECT row_to_json(created) FROM created) AS created, (SELECT row_to_json(existing) FROM existing) AS existing,
      EXISTS (SELECT 1 FROM admins WHERE lower(name) = lower($2)) AS "nameTaken"`
}
/** Arbitrary constant: the advisory lock that serialises "is there an owner yet?" (the first confirmed admin becomes one). */
const FIRST_OWNER_LOCK = 7_264_829_114
const LOCK_FIRST_OWNER = { name: 'admins_lock_first_owner', text: `SELECT pg_advisory_xact_lock(${FIRST_OWNER_LOCK})` }
const PROMOTE_FIRST_OWNER = {
  name: 'admins_promote_first_owner',
  text: `UPDATE admins SET role = 'owner', updated_at = now()
    WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM admins WHERE role = 'owner' AND confirmed_at IS NOT NULL AND id <> $1)
    RETURNING id`
}
/** The owners, locked: changes that could leave none (demotion, deletion) serialise on them. */
const LOCK_OWNERS = { name: 'admins_lock_owners', text: 'SELECT id FROM admins WHERE role = \'owner\' ORDER BY id FOR UPDATE' }
const SET_ROLE = { name: 'admins_set_role', text: `UPDATE admins SET role = $2, updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}` }
const GET = { name: 'admins_get', text: `SELECT ${COLUMNS} FROM admins WHERE id = $1` }
const UPDATE = {
  name: 'admins_update',
  text: `UPDATE admins SET
      name = coalesce($2, name),
      email = coalesce($3, email),
      pending_email = CASE WHEN $4::boolean THEN $5 ELSE pending_email END,
      password_hash = coalesce($6, password_hash),
      confirmed_at = CASE WHEN $7::boolean THEN coalesce(confirmed_at, now()) ELSE confirmed_at END,
      updated_at = now()
    WHERE id = $1 RETURNING ${COLUMNS}`
}
const EMAIL_IN_USE = { name: 'admins_email_in_use', text: 'SELECT 1 FROM admins WHERE lower(email) = lower($1) AND id <> $2' }
const DELETE = { name: 'admins_delete', text: 'DELETE FROM admins WHERE id = $1 RETURNING id' }
const lockByEmail = (condition: string): string => `SELECT id, name, email FROM admins WHERE lower(email) = $1${condition} FOR UPDATE`
const LOCK_BY_EMAIL = { name: 'admins_lock_by_email', text: lockByEmail('') }
const LOCK_UNCONFIRMED_BY_EMAIL = { name: 'admins_lock_unconfirmed_by_email', text: lockByEmail(' AND confirmed_at IS NULL') }

const ISSUE_TOKEN = {
  name: 'admins_issue_token',
  text: 'INSERT INTO account_tokens (token_hash, admin_id, purpose, email, expires_at) VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::int))'
}
const CONSUME_TOKEN = {
  name: 'admins_consume_token',
  text: `UPDATE account_tokens SET used_at = now()
    WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() AND purpose = ANY($2::text[])
    RETURNING admin_id AS "adminId", purpose, email`
}
const VOID_TOKENS = { name: 'admins_void_tokens', text: 'UPDATE account_tokens SET used_at = now() WHERE admin_id = $1 AND purpose = $2 AND used_at IS NULL' }
/** ISSUE_TOKEN, unless the admin got $6 tokens of the purpose within the last hour. */
const ISSUE_TOKEN_WITHIN = {
  name: 'admins_issue_token_within',
  text: `INSERT INTO account_tokens (token_hash, admin_id, purpose, email, expires_at)
    SELECT $1, $2, $3, $4, now() + make_interval(secs => $5::int)
    WHERE (SELECT count(*) FROM account_tokens WHERE admin_id = $2 AND purpose = $3 AND created_at > now() - interval '1 hour') < $6
    RETURNING 1`
}

/** Unique violations of the admins table become 409s naming the field; anything else is rethrown. */
export const adminsConflict = violations({
  admins_email_lower_key: () => new adminsErrors.EmailTaken(),
  admins_name_lower_key: () => new adminsErrors.NameTaken()
})

/**
 * GET /auth/admins (paged by the service's lister). Selects only what the API shows: the password hash is
 * never read. Each sort has its `(key, id)` index (db/schema/admins.ts).
 */
export const ADMINS_LIST: ListSpec = {
  name: 'admins',
  columns: `id, email, name, confirmed_at IS NOT NULL AS confirmed, role, ${utc('created_at')} AS "createdAt"`,
  sorts: { createdAt: CREATED_AT, email: textSort('email'), name: textSort('name') } satisfies Record<typeof ADMIN_SORTS[number], unknown>,
  defaultSort: 'createdAt'
}

/**
 * The admins and account_tokens tables. Every function is one named
 * statement, on the pool or on the caller's transaction `tx`.
 */
export function createAdminsRepository (db: Database) {
  const one = async (tx: Queryable, config: { name: string, text: string }, values: unknown[]): Promise<AdminRow | null> =>
    (await tx.query<AdminRow>({ ...config, values })).rows[0] ?? null

  return {
    async insert (tx: Queryable, values: { email: string, name: string, passwordHash: string, confirmed: boolean, role: Role }): Promise<AdminRow> {
      try {
        return await one(tx, INSERT, [values.email, values.name, values.passwordHash, values.confirmed, values.role]) as AdminRow
      } catch (err) {
        throw adminsConflict(err)
      }
    },

    /**
     * Registers an unconfirmed admin (see REGISTER): the new row, or the admin
     * already holding the email; a taken name is a 409 either way.
     */
    async register (tx: Queryable, values: { email: string, name: string, passwordHash: string, role: Role }): Promise<{ created: AdminRow } | { existing: { id: string, email: string, name: string } }> {
      let row: { created: AdminRow | null, existing: { id: string, email: string, name: string } | null, nameTaken: boolean }
      try {
        row = (await tx.query<typeof row>({ ...REGISTER, values: [values.email, values.name, values.passwordHash, values.role] })).rows[0] as typeof row
      } catch (err) {
        throw adminsConflict(err)
      }
      if (row.created !== null) return { created: row.created }
      if (row.nameTaken) throw new adminsErrors.NameTaken()
      return { existing: row.existing as { id: string, email: string, name: string } }
    },

    async get (id: string, tx: Queryable = db): Promise<AdminRow | null> {
      return await one(tx, GET, [id])
    },

    /** Updates an admin (and its updated_at); null when it no longer exists. */
    async update (tx: Queryable, id: string, change: AdminChange): Promise<AdminRow | null> {
      try {
        return await one(tx, UPDATE, [
          id, change.name ?? null, change.email ?? null, change.pendingEmail !== undefined, change.pendingEmail ?? null,
          change.passwordHash ?? null, change.confirm === true
        ])
      } catch (err) {
        throw adminsConflict(err)
      }
    },

    /** Makes the admin an owner when no other confirmed owner exists (the first admin to confirm); true when it did. */
    async promoteIfFirstOwner (tx: Queryable, id: string): Promise<boolean> {
      await tx.query(LOCK_FIRST_OWNER)
      return (await tx.query({ ...PROMOTE_FIRST_OWNER, values: [id] })).rows.length === 1
    },

    /** Locks the owners' rows until the transaction ends; answers their ids. */
    async lockOwners (tx: Queryable): Promise<string[]> {
      return (await tx.query<{ id: string }>(LOCK_OWNERS)).rows.map((r) => r.id)
    },

    async setRole (tx: Queryable, id: string, role: Role): Promise<AdminRow | null> {
      return await one(tx, SET_ROLE, [id, role])
    },

    /** True when another admin already uses this email (its current address). */
    async emailInUse (email: string, exceptId: string): Promise<boolean> {
      return (await db.query({ ...EMAIL_IN_USE, values: [email, exceptId] })).rows.length > 0
    },

    /** Deletes an admin: sessions and tokens go with it (cascade); users it created keep existing with created_by null. */
    async remove (tx: Queryable, id: string): Promise<boolean> {
      return (await tx.query({ ...DELETE, values: [id] })).rows.length === 1
    },

    /** Locks the admin with this (normalised) email, only while unconfirmed when asked; null when there is none. */
    async lockByEmail (tx: Queryable, key: string, unconfirmedOnly: boolean): Promise<{ id: string, name: string, email: string } | null> {
      const { rows } = await tx.query<{ id: string, name: string, email: string }>({ ...(unconfirmedOnly ? LOCK_UNCONFIRMED_BY_EMAIL : LOCK_BY_EMAIL), values: [key] })
      return rows[0] ?? null
    },

    /** Issues a single-use token (32 random bytes, base64url); only its SHA-256 is stored. */
    async issueToken (tx: Queryable, adminId: string, purpose: TokenPurpose, email?: string): Promise<string> {
      const token = randomToken()
      await tx.query({ ...ISSUE_TOKEN, values: [hashToken(token), adminId, purpose, email ?? null, TOKEN_TTL[purpose]] })
      return token
    },

    /** Uses up a live token of one of the purposes; null when it is unknown, expired or used. */
    async consumeToken (tx: Queryable, token: string, purposes: TokenPurpose[]): Promise<TokenUse | null> {
      return (await tx.query<TokenUse>({ ...CONSUME_TOKEN, values: [hashToken(token), purposes] })).rows[0] ?? null
    },

    /** Voids every unused token of the purpose an admin holds (a newer one replaces them, or the password changed). */
    async voidTokens (tx: Queryable, adminId: string, purpose: TokenPurpose): Promise<void> {
      await tx.query({ ...VOID_TOKENS, values: [adminId, purpose] })
    },

    /** issueToken, unless `perHour` tokens of the purpose went to the admin within the last hour: then null. */
    async issueTokenWithin (tx: Queryable, adminId: string, purpose: TokenPurpose, perHour: number): Promise<string | null> {
      const token = randomToken()
      const { rows } = await tx.query({ ...ISSUE_TOKEN_WITHIN, values: [hashToken(token), adminId, purpose, null, TOKEN_TTL[purpose], perHour] })
      return rows.length === 1 ? token : null
    }
  }
}

export type AdminsRepository = ReturnType<typeof createAdminsRepository>
