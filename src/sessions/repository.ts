import type { SessionView } from '../../schemas/sessions.ts'
import { hashToken, randomToken } from '../infra/crypto.ts'
import type { Database, Queryable } from '../infra/database.ts'
import { iso } from '../infra/sql.ts'
import { ATTEMPT, attemptParams, RETRY_AFTER, type LockoutPolicy } from './throttle.ts'

export interface SessionTtl {
  /** seconds */
  idle: number
  /** seconds */
  absolute: number
}

export type SessionInfo = Omit<SessionView, 'current'>

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
    SELECT EXISTS (SELECT 1 FROM attempt) AS counted, ${RETRY_AFTER} AS "retryAfter",
      a.id, a.password_hash AS "passwordHash", a.confirmed_at IS NOT NULL AS confirmed
    FROM (SELECT 1) AS one LEFT JOIN admins a ON lower(a.email) = $1`
}
const COUNT_ATTEMPT = {
  name: 'sessions_count_attempt',
  text: `WITH ${ATTEMPT}
    SELECT EXISTS (SELECT 1 FROM attempt) AS counted, ${RETRY_AFTER}::int AS "retryAfter"`
}
const CLEAR_ATTEMPTS = { name: 'sessions_clear_attempts', text: 'DELETE FROM login_throttle WHERE email = $1' }

/**
 * A login's writes in one statement: the session, its first refresh token, the
 * end of the email's failed-login count and (the `_rehash` variant), when the
 * stored hash was made with other argon2 parameters, the upgraded hash.
 * Parameters: $1 admin, $2 user agent, $3 ip, $4 idle and $5 absolute ttl,
 * $6 refresh token hash, $7 throttle key; $8 new and $9 old hash.
 */
const start = (rehash: string): string => `
    WITH s AS (
      INSERT INTO sessions (admin_id, user_agent, ip, idle_expires_at, expires_at)
      SELECT id, $2::text, $3::text, now() + make_interval(secs => $4::int), now() + make_interval(secs => $5::int)
      FROM admins WHERE id = $1
      RETURNING id
    ), r AS (
      INSERT INTO refresh_tokens (token_hash, session_id) SELECT $6, id FROM s
    ), t AS (
      DELETE FROM login_throttle WHERE email = $7
    )${rehash}
    SELECT id FROM s`
const START = { name: 'sessions_start', text: start('') }
const START_REHASH = {
  name: 'sessions_start_rehash',
  text: start(', rehash AS (UPDATE admins SET password_hash = $8 WHERE id = $1 AND password_hash = $9)')
}

/**
 * Exchanges a refresh token ($1, its hash) for a new one ($2) in one
 * statement: the token is marked used, its successor stored, the session's idle
 * expiry pushed out by $3 seconds (never past its absolute expiry).
 */
const ROTATE = {
  name: 'sessions_rotate',
  text: `
    WITH used AS (
      UPDATE refresh_tokens r SET used_at = now()
      FROM sessions s
      WHERE r.token_hash = $1 AND r.used_at IS NULL AND s.id = r.session_id
        AND ${live('s')}
      RETURNING s.id AS sid, s.admin_id AS sub, s.expires_at
    ), fresh AS (
      INSERT INTO refresh_tokens (token_hash, session_id) SELECT $2, sid FROM used
    ), touched AS (
      UPDATE sessions SET last_used_at = now(), idle_expires_at = least(now() + make_interval(secs => $3::int), used.expires_at)
      FROM used WHERE sessions.id = used.sid
    )
    SELECT sid, sub FROM used`
}
/** A used refresh token presented again: its session is revoked (someone else holds a copy). */
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

/** A signing key recorded in signing_keys by an instance of the fleet. */
export interface RecordedKey {
  kid: string
  /** SPKI PEM */
  pem: string
  /** The issuer of the last instance that signed with it (null if none ever did). */
  issuer: string | null
  /** Some instance signed with it within the `signing` window. */
  signing: boolean
}

const PUBLISHED = `SELECT kid, public_key AS pem, issuer, coalesce(last_signed_at > now() - make_interval(secs => $2::int), false) AS signing
    FROM signing_keys WHERE last_seen_at > now() - make_interval(secs => $1::int) ORDER BY first_seen_at, kid`
/**
 * Records the keys an instance holds ($3 kids, $4 their PEMs; $1 the one it
 * signs with, as issuer $2) and answers every key seen within $5 seconds
 * ($6: signed with within that many) AS IT WAS before this statement: so that
 * a key's previous issuer shows, too.
 */
const RECORD_KEYS = {
  name: 'sessions_record_keys',
  text: `WITH recorded AS (
      INSERT INTO signing_keys AS k (kid, public_key, issuer, last_signed_at)
      SELECT u.kid, u.pem, CASE WHEN u.kid = $1 THEN $2 END, CASE WHEN u.kid = $1 THEN now() END
      FROM unnest($3::text[], $4::text[]) AS u(kid, pem)
      ON CONFLICT (kid) DO UPDATE SET last_seen_at = now(),
        issuer = coalesce(EXCLUDED.issuer, k.issuer), last_signed_at = coalesce(EXCLUDED.last_signed_at, k.last_signed_at)
    )
    ${PUBLISHED.replace('$1', '$5').replace('$2', '$6')}`
}
const PUBLISHED_KEYS = { name: 'sessions_published_keys', text: PUBLISHED }

/**
 * Sessions, their refresh tokens and the failed-login counters. Every function
 * is one named statement, on the pool or on the caller's transaction `tx`.
 */
export function createSessionsRepository (db: Database) {
  return {
    async isLive (sessionId: string, adminId: string): Promise<boolean> {
      return (await db.query({ ...IS_LIVE, values: [sessionId, adminId] })).rows.length === 1
    },

    /** Counts a login attempt against `key` and reads the account with that email (nulls when none). */
    async attemptLogin (key: string, policy: LockoutPolicy): Promise<{ counted: boolean, retryAfter: number, id: string | null, passwordHash: string | null, confirmed: boolean | null }> {
      const { rows } = await db.query<{ counted: boolean, retryAfter: number, id: string | null, passwordHash: string | null, confirmed: boolean | null }>({ ...ATTEMPT_LOGIN, values: attemptParams(key, policy) })
      return rows[0] as NonNullable<typeof rows[0]>
    },

    /** Counts an attempt; when the key is locked nothing is counted and `retryAfter` says for how many seconds still. */
    async countAttempt (key: string, policy: LockoutPolicy): Promise<{ counted: boolean, retryAfter: number }> {
      const { rows } = await db.query<{ counted: boolean, retryAfter: number }>({ ...COUNT_ATTEMPT, values: attemptParams(key, policy) })
      return rows[0] as { counted: boolean, retryAfter: number }
    },

    /** A correct password: the failed attempts of `key` are forgotten. */
    async clearAttempts (key: string, tx: Queryable = db): Promise<void> {
      await tx.query({ ...CLEAR_ATTEMPTS, values: [key] })
    },

    /** Starts a session with its first refresh token (see START); null when the admin no longer exists. */
    async start (opts: { adminId: string, ttl: SessionTtl, throttleKey: string, userAgent?: string | undefined, ip?: string | undefined, rehash?: { from: string, to: string } | undefined }): Promise<{ sessionId: string, refreshToken: string } | null> {
      const refreshToken = randomToken()
      const values = [
        opts.adminId, opts.userAgent?.slice(0, 512) ?? null, opts.ip ?? null, Math.min(opts.ttl.idle, opts.ttl.absolute), opts.ttl.absolute,
        hashToken(refreshToken), opts.throttleKey
      ]
      const { rows } = opts.rehash === undefined
        ? await db.query<{ id: string }>({ ...START, values })
        : await db.query<{ id: string }>({ ...START_REHASH, values: [...values, opts.rehash.to, opts.rehash.from] })
      // No row: the account was deleted since the caller read it.
      return rows[0] === undefined ? null : { sessionId: rows[0].id, refreshToken }
    },

    /** See ROTATE; a token that was already used revokes its whole session. The caller answers 401 either way. */
    async rotate (token: string, ttl: SessionTtl): Promise<Rotation> {
      const hash = hashToken(token)
      const next = randomToken()
      const { rows } = await db.query<{ sid: string, sub: string }>({ ...ROTATE, values: [hash, hashToken(next), ttl.idle] })
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

    /**
     * Records the signing key and the previous keys of this instance, and
     * answers the keys seen within `window.seen` seconds as they were before.
     */
    async recordKeys (held: { signing: string, issuer: string, keys: Array<{ kid: string, pem: string }> }, window: { seen: number, signing: number }): Promise<RecordedKey[]> {
      const values = [held.signing, held.issuer, held.keys.map((k) => k.kid), held.keys.map((k) => k.pem), window.seen, window.signing]
      return (await db.query<RecordedKey>({ ...RECORD_KEYS, values })).rows
    },

    /** The keys seen within `window.seen` seconds. */
    async publishedKeys (window: { seen: number, signing: number }): Promise<RecordedKey[]> {
      return (await db.query<RecordedKey>({ ...PUBLISHED_KEYS, values: [window.seen, window.signing] })).rows
    },

    /** An admin's live sessions, most recently used first (at most `limit`). */
    async list (adminId: string, limit: number): Promise<SessionInfo[]> {
      return (await db.query<SessionInfo>({ ...LIST, values: [adminId, limit] })).rows
    }
  }
}

export type SessionsRepository = ReturnType<typeof createSessionsRepository>
