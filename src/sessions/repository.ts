import type { SessionView } from '../../schemas/sessions.ts'
import { hashToken, randomToken } from '../infra/crypto.ts'
import type { Database, Queryable } from '../infra/database.ts'
import { iso } from '../infra/sql.ts'
import { ATTEMPT, attemptParams, giveBack, OUTCOME, type LockoutPolicy } from './throttle.ts'

export interface SessionTtl {
  /** seconds */
  idle: number
  /** seconds */
  absolute: number
}

export type SessionInfo = Omit<SessionView, 'current'>

/** A counted (or refused) attempt: see OUTCOME in ./throttle.ts. */
export interface Attempt { counted: boolean, retryAfter: number, settlesIn: number }

export type Rotation =
  | { ok: true, sessionId: string, adminId: string, refreshToken: string }
  | { ok: false, revokedSessionId: string | null }

/** THE live-session condition: not revoked, and within both its idle and absolute lifetime (`s` the sessions row's alias). */
const live = (s: string): string => `${s}.revoked_at IS NULL AND ${s}.expires_at > now() AND ${s}.idle_expires_at > now()`

const IS_LIVE = { name: 'sessions_is_live', text: `SELECT s.id FROM sessions s WHERE s.id = $1 AND s.admin_id = $2 AND ${live('s')} LIMIT 1` }

/**
 * A login's first statement: counts the attempt (lockout, ./throttle.ts) and
 * reads the account, whether or not the email has one.
 */
const ATTEMPT_LOGIN = {
  name: 'sessions_attempt_login',
  text: `WITH ${ATTEMPT}
    SELECT ${OUTCOME}, a.id, a.password_hash AS "passwordHash", a.confirmed_at IS NOT NULL AS confirmed
    FROM (SELECT 1) AS one LEFT JOIN admins a ON lower(a.email) = $1`
}
const COUNT_ATTEMPT = {
  name: 'sessions_count_attempt',
  text: `WITH ${ATTEMPT} SELECT ${OUTCOME}`
}
const GIVE_BACK = { name: 'sessions_give_back_attempt', text: `WITH ${giveBack('$1', '$2', '$3')} SELECT 1` }
const CLEAR_ATTEMPTS = { name: 'sessions_clear_attempts', text: 'DELETE FROM login_throttle WHERE email = $1' }

/**
 * A login's writes in one statement: the session, its first refresh token, its
 * attempt given back to the lockout and (the `_rehash` variant), when the
 * stored hash was made with other argon2 parameters, the upgraded hash.
 * Parameters: $1 admin, $2 user agent, $3 ip, $4 idle and $5 absolute ttl,
 * $6 refresh token hash, $7 email and $8 client throttle keys, $9 the account
 * lockout threshold; $10 new and $11 old hash.
 */
const start = (rehash: string): string => `
    WITH s AS (
      INSERT INTO sessions (admin_id, user_agent, ip, idle_expires_at, expires_at)
      SELECT id, $2::text, $3::text, now() + make_interval(secs => $4::int), now() + make_interval(secs => $5::int)
      FROM admins WHERE id = $1
      RETURNING id
    ), r AS (
      INSERT INTO refresh_tokens (token_hash, session_id) SELECT $6, id FROM s
    ), ${giveBack('$7', '$8', '$9')}${rehash}
    SELECT id FROM s`
const START = { name: 'sessions_start', text: start('') }
const START_REHASH = {
  name: 'sessions_start_rehash',
  text: start(', rehash AS (UPDATE admins SET password_hash = $10 WHERE id = $1 AND password_hash = $11)')
}

/**
 * Exchanges a refresh token ($1, its hash) for a new one ($2) in one
 * statement: the token is marked used, its successor stored, the session's idle
 * expiry pushed out by $3 seconds (never past its absolute expiry). A token
 * used less than $4 seconds ago (REFRESH_REUSE_INTERVAL) is exchanged again,
 * for a successor of its own: a client retrying a refresh whose answer it lost,
 * or sending it twice at once, keeps its session. A concurrent exchange of the
 * same token waits for the first one's row lock, then finds it used within the
 * interval.
 */
const ROTATE = {
  name: 'sessions_rotate',
  text: `
    WITH used AS (
      UPDATE refresh_tokens r SET used_at = coalesce(r.used_at, now())
      FROM sessions s
      WHERE r.token_hash = $1 AND s.id = r.session_id AND ${live('s')}
        AND (r.used_at IS NULL OR ($4::int > 0 AND r.used_at > now() - make_interval(secs => $4::int)))
      RETURNING s.id AS sid, s.admin_id AS sub, s.expires_at
    ), fresh AS (
      INSERT INTO refresh_tokens (token_hash, session_id) SELECT $2, sid FROM used
    ), touched AS (
      UPDATE sessions SET last_used_at = now(), idle_expires_at = least(now() + make_interval(secs => $3::int), used.expires_at)
      FROM used WHERE sessions.id = used.sid
    )
    SELECT sid, sub FROM used`
}
/** A refresh token presented again after the reuse interval: its session is revoked (someone else holds a copy). */
const REVOKE_REUSED = {
  name: 'sessions_revoke_reused',
  text: `
    UPDATE sessions s SET revoked_at = now(), revoked_reason = 'refresh_token_reuse'
    FROM refresh_tokens r
    WHERE r.token_hash = $1 AND r.used_at IS NOT NULL AND s.id = r.session_id AND s.revoked_at IS NULL
    RETURNING s.id`
}
const REVOKE = {
  name: 'sessions_revoke',
  text: `UPDATE sessions s SET revoked_at = now(), revoked_reason = $3 WHERE s.id = $2 AND s.admin_id = $1 AND ${live('s')} RETURNING s.id`
}
const REVOKE_ALL = {
  name: 'sessions_revoke_all',
  text: 'UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE admin_id = $1 AND revoked_at IS NULL RETURNING id'
}
const REVOKE_ALL_BUT = {
  name: 'sessions_revoke_all_but',
  text: 'UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE admin_id = $1 AND revoked_at IS NULL AND id <> $3 RETURNING id'
}
const LIST = {
  name: 'sessions_list',
  text: `SELECT s.id, ${iso('s.created_at')} AS "createdAt", ${iso('s.last_used_at')} AS "lastUsedAt",
      ${iso('s.idle_expires_at')} AS "idleExpiresAt", ${iso('s.expires_at')} AS "expiresAt", s.user_agent AS "userAgent", s.ip
    FROM sessions s WHERE s.admin_id = $1 AND ${live('s')}
    ORDER BY s.last_used_at DESC, s.id DESC LIMIT $2`
}

/**
 * Sessions, their refresh tokens and the failed-login counters. Every function
 * is one named statement, on the pool or on the caller's transaction `tx`.
 */
export function createSessionsRepository (db: Database) {
  return {
    async isLive (sessionId: string, adminId: string): Promise<boolean> {
      return (await db.query({ ...IS_LIVE, values: [sessionId, adminId] })).rows.length === 1
    },

    /** Counts a login attempt of `email` from `client` (by this `instance`) and reads the account with that email (nulls when none). */
    async attemptLogin (email: string, client: string, policy: LockoutPolicy, instance: string): Promise<Attempt & { id: string | null, passwordHash: string | null, confirmed: boolean | null }> {
      const { rows } = await db.query<Attempt & { id: string | null, passwordHash: string | null, confirmed: boolean | null }>({ ...ATTEMPT_LOGIN, values: attemptParams(email, client, policy, instance) })
      return rows[0] as NonNullable<typeof rows[0]>
    },

    /** Counts an attempt; when a key is locked nothing is counted, and the answer says for how long (see OUTCOME). */
    async countAttempt (email: string, client: string, policy: LockoutPolicy, instance: string): Promise<Attempt> {
      const { rows } = await db.query<Attempt>({ ...COUNT_ATTEMPT, values: attemptParams(email, client, policy, instance) })
      return rows[0] as Attempt
    },

    /** A correct password: its attempt is given back (see giveBack). */
    async giveBack (email: string, client: string, policy: LockoutPolicy): Promise<void> {
      await db.query({ ...GIVE_BACK, values: [email, client, policy.accountThreshold] })
    },

    /** The password was proven and changed (or the account deleted): every count of `email` is forgotten. */
    async clearAttempts (email: string, tx: Queryable = db): Promise<void> {
      await tx.query({ ...CLEAR_ATTEMPTS, values: [email] })
    },

    /** Starts a session with its first refresh token (see START); null when the admin no longer exists. */
    async start (opts: { adminId: string, ttl: SessionTtl, throttle: { email: string, client: string, policy: LockoutPolicy }, userAgent?: string | undefined, ip?: string | undefined, rehash?: { from: string, to: string } | undefined }): Promise<{ sessionId: string, refreshToken: string } | null> {
      const refreshToken = randomToken()
      const values = [
        opts.adminId, opts.userAgent?.slice(0, 512) ?? null, opts.ip ?? null, Math.min(opts.ttl.idle, opts.ttl.absolute), opts.ttl.absolute,
        hashToken(refreshToken), opts.throttle.email, opts.throttle.client, opts.throttle.policy.accountThreshold
      ]
      const { rows } = opts.rehash === undefined
        ? await db.query<{ id: string }>({ ...START, values })
        : await db.query<{ id: string }>({ ...START_REHASH, values: [...values, opts.rehash.to, opts.rehash.from] })
      // No row: the account was deleted since the caller read it.
      return rows[0] === undefined ? null : { sessionId: rows[0].id, refreshToken }
    },

    /**
     * See ROTATE: a token used more than `reuseInterval` seconds ago revokes its
     * whole session. The caller answers 401 either way.
     */
    async rotate (token: string, ttl: SessionTtl, reuseInterval: number): Promise<Rotation> {
      const hash = hashToken(token)
      const next = randomToken()
      const { rows } = await db.query<{ sid: string, sub: string }>({ ...ROTATE, values: [hash, hashToken(next), ttl.idle, reuseInterval] })
      const row = rows[0]
      if (row !== undefined) return { ok: true, sessionId: row.sid, adminId: row.sub, refreshToken: next }
      const reused = await db.query<{ id: string }>({ ...REVOKE_REUSED, values: [hash] })
      return { ok: false, revokedSessionId: reused.rows[0]?.id ?? null }
    },

    /** Ends one live session of an admin; false when it is not theirs or already over. */
    async revoke (adminId: string, sessionId: string, reason: string): Promise<boolean> {
      return (await db.query({ ...REVOKE, values: [adminId, sessionId, reason] })).rows.length === 1
    },

    /** Ends every live session of an admin, but `except` (the caller's own, on a password change); returns their ids. */
    async revokeAll (tx: Queryable, adminId: string, reason: string, except?: string): Promise<string[]> {
      const { rows } = except === undefined
        ? await tx.query<{ id: string }>({ ...REVOKE_ALL, values: [adminId, reason] })
        : await tx.query<{ id: string }>({ ...REVOKE_ALL_BUT, values: [adminId, reason, except] })
      return rows.map((r) => r.id)
    },

    /** An admin's live sessions, most recently used first (at most `limit`). */
    async list (adminId: string, limit: number): Promise<SessionInfo[]> {
      return (await db.query<SessionInfo>({ ...LIST, values: [adminId, limit] })).rows
    }
  }
}

export type SessionsRepository = ReturnType<typeof createSessionsRepository>
