import type { Role } from '../../schemas/admins.ts'
import type { SessionView } from '../../schemas/sessions.ts'
import { hashToken, randomToken } from '../infra/crypto.ts'
import type { Database, Queryable } from '../infra/database.ts'
import { hitSql, type StatementCount } from '../infra/rate-limit-store.ts'
import { iso } from '../infra/sql.ts'
import { attempt, ATTEMPT, attemptParams, giveBack, OUTCOME, type LockoutPolicy } from './throttle.ts'

export interface SessionTtl {
  /** seconds */
  idle: number
  /** seconds */
  absolute: number
}

export type SessionInfo = Omit<SessionView, 'current'>

/** A counted (or refused) attempt: see OUTCOME in ./throttle.ts. */
export interface Attempt { counted: boolean, retryAfter: number, settlesIn: number, lockedClient: boolean, lockedAccount: boolean }

export type Rotation =
  | { ok: true, sessionId: string, adminId: string, refreshToken: string, authTime: number }
  | { ok: false, revokedSessionId: string | null }

/** THE live-session condition: not revoked, and within both its idle and absolute lifetime (`s` the sessions row's alias). */
const live = (s: string): string => `${s}.revoked_at IS NULL AND ${s}.expires_at > now() AND ${s}.idle_expires_at > now()`

/** The session check of every authenticated request: live, and its admin's role and MFA state read with it. */
const LIVE_SESSION = {
  name: 'sessions_live',
  text: `SELECT a.role, a.totp_enabled_at IS NOT NULL AS mfa FROM sessions s JOIN admins a ON a.id = s.admin_id
    WHERE s.id = $1 AND s.admin_id = $2 AND ${live('s')} LIMIT 1`
}
/** What a step-up checks: the admin's password hash and TOTP state. */
const FACTORS = {
  name: 'sessions_factors',
  text: 'SELECT email, password_hash AS "passwordHash", totp_secret AS "totpSecret", totp_last_step::float8 AS "lastStep", totp_enabled_at IS NOT NULL AS mfa FROM admins WHERE id = $1'
}
/** A step-up: the session's authentication time is now; with TOTP only when the code's step ($3) is newer than the last. */
const REAUTHENTICATE = {
  name: 'sessions_reauthenticate',
  text: `WITH f AS (
      UPDATE admins SET totp_last_step = $3::bigint
      WHERE id = $1 AND $3::bigint IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < $3::bigint) RETURNING id
    )
    UPDATE sessions s SET authenticated_at = now()
    WHERE s.id = $2 AND s.admin_id = $1 AND ${live('s')} AND ($3::bigint IS NULL OR EXISTS (SELECT 1 FROM f))
    RETURNING floor(extract(epoch FROM s.authenticated_at))::int AS "authTime"`
}
const LIVE_IDS = { name: 'sessions_live_ids', text: `SELECT s.id FROM sessions s WHERE s.admin_id = $1 AND ${live('s')}` }

/**
 * The first statement of a login step: counts the attempt (lockout,
 * ./throttle.ts: $1–$8) and selects `columns` of the admin row `join`ed,
 * whether or not there is one. Its `counted` variant, a step's first run,
 * counts the request against the /auth rate limit too (from `$first`: key,
 * window in ms, limit; src/infra/rate-limit-store.ts) and the attempt only
 * within the limit; a lock being waited out runs the plain one.
 */
const attemptStatements = (name: string, columns: string, join: string, first: number): { plain: { name: string, text: string }, counted: { name: string, text: string } } => ({
  plain: { name, text: `WITH ${ATTEMPT} SELECT ${OUTCOME}, ${columns} FROM (SELECT 1) AS one LEFT JOIN ${join}` },
  counted: {
    name: `${name}_counted`,
    text: `WITH hit AS (${hitSql(`$${first}`, `$${first + 1}`)}), ${attempt(`(SELECT current FROM hit) <= $${first + 2}::int`)}
      SELECT ${OUTCOME}, ${columns}, hit.current AS "rateCount", hit.ttl AS "rateTtl" FROM hit LEFT JOIN ${join}`
  }
})
/** A login's first statement: the attempt, and the account by its email. */
const ATTEMPT_LOGIN = attemptStatements('sessions_attempt_login',
  'a.id, a.password_hash AS "passwordHash", a.confirmed_at IS NOT NULL AS confirmed, a.totp_enabled_at IS NOT NULL AS mfa',
  'admins a ON lower(a.email) = $1', 9)
/**
 * The second step of a login with MFA, first statement: the code's attempt,
 * against the email's lockout ($1, from the mfa_token; $2 the client), and
 * the admin's TOTP state ($9).
 */
const ATTEMPT_MFA = attemptStatements('sessions_attempt_mfa',
  'a.id, a.totp_secret AS "totpSecret", a.totp_last_step::float8 AS "lastStep", a.totp_enabled_at IS NOT NULL AS mfa',
  'admins a ON a.id = $9::uuid', 10)
const COUNT_ATTEMPT = {
  name: 'sessions_count_attempt',
  text: `WITH ${ATTEMPT} SELECT ${OUTCOME}`
}
const GIVE_BACK = { name: 'sessions_give_back_attempt', text: `WITH ${giveBack('$1', '$2', '$3', 1)} SELECT 1` }
const CLEAR_ATTEMPTS = { name: 'sessions_clear_attempts', text: 'DELETE FROM login_throttle WHERE email = $1' }

/**
 * A session and its first refresh token, for the admin rows of `source`.
 * Parameters: $2 user agent, $3 ip, $4 idle and $5 absolute ttl, $6 refresh token hash.
 */
const session = (source: string): string => `s AS (
      INSERT INTO sessions (admin_id, user_agent, ip, idle_expires_at, expires_at)
      SELECT id, $2::text, $3::text, now() + make_interval(secs => $4::int), now() + make_interval(secs => $5::int)
      FROM ${source}
      RETURNING id
    ), r AS (
      INSERT INTO refresh_tokens (token_hash, session_id) SELECT $6, id FROM s
    )`

/**
 * A login's writes in one statement: the session, its first refresh token, its
 * attempt given back to the lockout and (the `_rehash` variant), when the
 * stored hash was made with other argon2 parameters, the upgraded hash.
 * Parameters: $1 admin, session()'s, $7 email and $8 client throttle keys, $9
 * the account lockout threshold; $10 new and $11 old hash.
 */
const start = (rehash: string): string => `
    WITH ${session('admins WHERE id = $1')}, ${giveBack('$7', '$8', '$9', 1)}${rehash}
    SELECT id FROM s`
const START = { name: 'sessions_start', text: start('') }
const START_REHASH = {
  name: 'sessions_start_rehash',
  text: start(', rehash AS (UPDATE admins SET password_hash = $10 WHERE id = $1 AND password_hash = $11)')
}
/** A password upgraded to the configured argon2 parameters at a login that goes on with its second factor. */
const REHASH = { name: 'sessions_rehash', text: 'UPDATE admins SET password_hash = $2 WHERE id = $1 AND password_hash = $3' }

/**
 * The second step of a login with MFA, its writes in one statement: the
 * mfa_token's jti ($10, expiring at $11) is recorded (single use: a second
 * completion with it finds it there), the second factor is used up ($12: the
 * TOTP time step, accepted only when newer than the last one, so a code is
 * accepted once; or a recovery code's hash), and only then the session starts
 * and the login's two attempts (its password's and its code's) are given back
 * to the lockout. Parameters otherwise as START.
 */
const startWithSecondFactor = (factor: 'totp' | 'recovery'): string => {
  const used = factor === 'totp'
    ? `UPDATE admins SET totp_last_step = $12::bigint
        WHERE id = $1 AND totp_enabled_at IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < $12::bigint) AND EXISTS (SELECT 1 FROM j)
        RETURNING id`
    : `UPDATE mfa_recovery_codes SET used_at = now()
        WHERE admin_id = $1 AND code_hash = $12::text AND used_at IS NULL AND EXISTS (SELECT 1 FROM j)
        RETURNING admin_id AS id`
  // A recovery code that is not the admin's leaves the mfa_token usable (a TOTP code was checked before this statement).
  const valid = factor === 'totp' ? 'true' : 'EXISTS (SELECT 1 FROM mfa_recovery_codes WHERE admin_id = $1 AND code_hash = $12::text AND used_at IS NULL)'
  return `
    WITH j AS (
      INSERT INTO mfa_token_uses (jti, expires_at) SELECT $10::uuid, to_timestamp($11::float8) WHERE ${valid}
      ON CONFLICT (jti) DO NOTHING RETURNING jti
    ), factor AS (
      ${used}
    ), ${session('factor')}, ${giveBack('$7', '$8', '$9', 2, 'EXISTS (SELECT 1 FROM s)')}
    SELECT id FROM s`
}
const START_TOTP = { name: 'sessions_start_totp', text: startWithSecondFactor('totp') }
const START_RECOVERY = { name: 'sessions_start_recovery', text: startWithSecondFactor('recovery') }

/**
 * Exchanges a refresh token ($1, its hash) for a new one ($2) in one
 * statement: the token is marked used, its successor stored, the session's idle
 * expiry pushed out by $3 seconds (never past its absolute expiry). A token
 * used less than $4 seconds ago (REFRESH_REUSE_INTERVAL) is exchanged again,
 * for a successor of its own: a client retrying a refresh whose answer it lost,
 * or sending it twice at once, keeps its session. A concurrent exchange of the
 * same token waits for the first one's row lock, then finds it used within the
 * interval. (The /auth rate limit counts the request before, in a statement
 * of its own: src/infra/rate-limit-store.ts says why not here.)
 */
const ROTATE = {
  name: 'sessions_rotate',
  text: `
    WITH used AS (
      UPDATE refresh_tokens r SET used_at = coalesce(r.used_at, now())
      FROM sessions s
      WHERE r.token_hash = $1 AND s.id = r.session_id AND ${live('s')}
        AND (r.used_at IS NULL OR ($4::int > 0 AND r.used_at > now() - make_interval(secs => $4::int)))
      RETURNING s.id AS sid, s.admin_id AS sub, s.expires_at, floor(extract(epoch FROM s.authenticated_at))::int AS "authTime"
    ), fresh AS (
      INSERT INTO refresh_tokens (token_hash, session_id) SELECT $2, sid FROM used
    ), touched AS (
      UPDATE sessions SET last_used_at = now(), idle_expires_at = least(now() + make_interval(secs => $3::int), used.expires_at)
      FROM used WHERE sessions.id = used.sid
    )
    SELECT sid, sub, "authTime" FROM used`
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

/** Where and for how long a session starts, and the lockout keys its attempts are given back to. */
export interface SessionStart { adminId: string, ttl: SessionTtl, throttle: { email: string, client: string, policy: LockoutPolicy }, userAgent?: string | undefined, ip?: string | undefined }

/** The parameters $1–$9 of a statement that starts a session (START and startWithSecondFactor). */
const sessionValues = (opts: SessionStart, refreshToken: string): unknown[] => [
  opts.adminId, opts.userAgent?.slice(0, 512) ?? null, opts.ip ?? null, Math.min(opts.ttl.idle, opts.ttl.absolute), opts.ttl.absolute,
  hashToken(refreshToken), opts.throttle.email, opts.throttle.client, opts.throttle.policy.accountThreshold
]

export interface LoginAttempt extends Attempt { id: string | null, passwordHash: string | null, confirmed: boolean | null, mfa: boolean | null }
export interface MfaAttempt extends Attempt { id: string | null, totpSecret: string | null, lastStep: number | null, mfa: boolean | null }

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
  /** A login step's attempt statement; the counted one when `rate` is given, whose count `rate.check` then answers (the 429 over the limit). */
  async function attemptWith<A extends Attempt> (statements: ReturnType<typeof attemptStatements>, values: unknown[], rate: StatementCount | undefined): Promise<A> {
    if (rate === undefined) return (await db.query<A>({ ...statements.plain, values })).rows[0] as A
    const row = (await db.query<A & { rateCount: number, rateTtl: number }>({ ...statements.counted, values: [...values, rate.key, rate.window, rate.max] })).rows[0] as A & { rateCount: number, rateTtl: number }
    await rate.check({ current: row.rateCount, ttl: row.rateTtl })
    return row
  }

  return {
    /** A live session's admin's role and MFA state; null when the session is not live (or not this admin's). */
    async liveSession (sessionId: string, adminId: string): Promise<{ role: Role, mfa: boolean } | null> {
      return (await db.query<{ role: Role, mfa: boolean }>({ ...LIVE_SESSION, values: [sessionId, adminId] })).rows[0] ?? null
    },

    async factors (adminId: string): Promise<{ email: string, passwordHash: string, totpSecret: string | null, lastStep: number | null, mfa: boolean } | null> {
      /* c8 ignore next -- null only for an admin deleted since its session check (see the service) */
      return (await db.query<{ email: string, passwordHash: string, totpSecret: string | null, lastStep: number | null, mfa: boolean }>({ ...FACTORS, values: [adminId] })).rows[0] ?? null
    },

    /** Records a step-up in the session (using up the TOTP step, when given); its new authentication time, or null. */
    async reauthenticate (adminId: string, sessionId: string, step: number | null): Promise<number | null> {
      /* c8 ignore next -- null only when the step was used, or the session ended, since the service's checks */
      return (await db.query<{ authTime: number }>({ ...REAUTHENTICATE, values: [adminId, sessionId, step] })).rows[0]?.authTime ?? null
    },

    /** The ids of an admin's live sessions (to forget their cached checks after a role change). */
    async liveIds (adminId: string, tx: Queryable = db): Promise<string[]> {
      return (await tx.query<{ id: string }>({ ...LIVE_IDS, values: [adminId] })).rows.map((r) => r.id)
    },

    /** Counts a login attempt of `email` from `client` (by this `instance`) and reads the account with that email (nulls when none). */
    async attemptLogin (email: string, client: string, policy: LockoutPolicy, instance: string, rate?: StatementCount): Promise<LoginAttempt> {
      return await attemptWith<LoginAttempt>(ATTEMPT_LOGIN, attemptParams(email, client, policy, instance), rate)
    },

    /** Counts a second-factor attempt of `email` from `client` and reads the admin's TOTP state (nulls when the admin is gone). */
    async attemptMfa (email: string, client: string, adminId: string, policy: LockoutPolicy, instance: string, rate?: StatementCount): Promise<MfaAttempt> {
      return await attemptWith<MfaAttempt>(ATTEMPT_MFA, [...attemptParams(email, client, policy, instance), adminId], rate)
    },

    async rehash (adminId: string, from: string, to: string): Promise<void> {
      await db.query({ ...REHASH, values: [adminId, to, from] })
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
    async start (opts: SessionStart & { rehash?: { from: string, to: string } | undefined }): Promise<{ sessionId: string, refreshToken: string } | null> {
      const refreshToken = randomToken()
      const values = sessionValues(opts, refreshToken)
      const { rows } = opts.rehash === undefined
        ? await db.query<{ id: string }>({ ...START, values })
        : await db.query<{ id: string }>({ ...START_REHASH, values: [...values, opts.rehash.to, opts.rehash.from] })
      // No row: the account was deleted since the caller read it.
      return rows[0] === undefined ? null : { sessionId: rows[0].id, refreshToken }
    },

    /**
     * Starts a session after a verified second factor (see startWithSecondFactor): null when the mfa_token
     * was used already, the TOTP step is not newer than the last accepted one, or the recovery code is not
     * one of the admin's unused ones.
     */
    async startWithSecondFactor (opts: SessionStart & { jti: string, expiresAt: number, factor: { step: number } | { recoveryCodeHash: string } }): Promise<{ sessionId: string, refreshToken: string } | null> {
      const refreshToken = randomToken()
      const totp = 'step' in opts.factor
      const values = [...sessionValues(opts, refreshToken), opts.jti, opts.expiresAt, 'step' in opts.factor ? opts.factor.step : opts.factor.recoveryCodeHash]
      const { rows } = await db.query<{ id: string }>({ ...(totp ? START_TOTP : START_RECOVERY), values })
      return rows[0] === undefined ? null : { sessionId: rows[0].id, refreshToken }
    },

    /**
     * See ROTATE: a token used more than `reuseInterval` seconds ago revokes its
     * whole session. The caller answers 401 either way.
     */
    async rotate (token: string, ttl: SessionTtl, reuseInterval: number): Promise<Rotation> {
      const hash = hashToken(token)
      const next = randomToken()
      const { rows } = await db.query<{ sid: string, sub: string, authTime: number }>({ ...ROTATE, values: [hash, hashToken(next), ttl.idle, reuseInterval] })
      const row = rows[0]
      if (row !== undefined) return { ok: true, sessionId: row.sid, adminId: row.sub, refreshToken: next, authTime: row.authTime }
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
