import { and, desc, eq, gt, isNull, sql } from 'drizzle-orm'
import type { NodePgDatabase } from 'drizzle-orm/node-postgres'
import { sessions, refreshTokens } from '../../db/schema/auth.ts'
import { hashToken, randomToken } from './crypto.ts'

type Db = Pick<NodePgDatabase<Record<string, unknown>>, 'insert' | 'select' | 'update' | 'execute'>

export interface SessionTtl {
  /** seconds */
  idle: number
  /** seconds */
  absolute: number
}

export interface NewSession {
  sessionId: string
  refreshToken: string
}

/** Starts a session for an admin and issues its first refresh token. */
export async function createSession (db: Db, adminId: string, ttl: SessionTtl, meta: { userAgent?: string | undefined, ip?: string | undefined } = {}): Promise<NewSession> {
  const [row] = await db.insert(sessions).values({
    adminId,
    userAgent: meta.userAgent?.slice(0, 512),
    ip: meta.ip,
    idleExpiresAt: sql`now() + make_interval(secs => ${ttl.idle})`,
    expiresAt: sql`now() + make_interval(secs => ${ttl.absolute})`
  }).returning({ id: sessions.id })
  const refreshToken = randomToken()
  await db.insert(refreshTokens).values({ tokenHash: hashToken(refreshToken), sessionId: (row as { id: string }).id })
  return { sessionId: (row as { id: string }).id, refreshToken }
}

/** A session is live while not revoked and within both its idle and absolute lifetime. */
export function liveSession (sessionId: string, adminId: string) {
  return and(
    eq(sessions.id, sessionId),
    eq(sessions.adminId, adminId),
    isNull(sessions.revokedAt),
    gt(sessions.expiresAt, sql`now()`),
    gt(sessions.idleExpiresAt, sql`now()`)
  )
}

export async function isSessionLive (db: Db, sessionId: string, adminId: string): Promise<boolean> {
  const rows = await db.select({ id: sessions.id }).from(sessions).where(liveSession(sessionId, adminId)).limit(1)
  return rows.length === 1
}

type Exec = Pick<NodePgDatabase<Record<string, unknown>>, 'execute'>

export interface LoginSession extends NewSession {
  adminId: string
}

/**
 * A login's writes in one statement: the session, its first refresh token,
 * the end of the email's failed-login count and, when the stored hash was
 * made with other argon2 parameters, the upgraded hash. Null when the admin
 * no longer exists.
 */
export async function startLoginSession (db: Exec, opts: { adminId: string, ttl: SessionTtl, throttleKey: string, userAgent?: string | undefined, ip?: string | undefined, rehash?: { from: string, to: string } | undefined }): Promise<NewSession | null> {
  const refreshToken = randomToken()
  const rehash = opts.rehash === undefined
    ? sql``
    : sql`, rehash AS (UPDATE admins SET password_hash = ${opts.rehash.to} WHERE id = ${opts.adminId} AND password_hash = ${opts.rehash.from})`
  const { rows } = await db.execute<{ id: string }>(sql`
    WITH s AS (
      INSERT INTO sessions (admin_id, user_agent, ip, idle_expires_at, expires_at)
      SELECT id, ${opts.userAgent?.slice(0, 512) ?? null}, ${opts.ip ?? null},
        now() + make_interval(secs => ${Math.min(opts.ttl.idle, opts.ttl.absolute)}), now() + make_interval(secs => ${opts.ttl.absolute})
      FROM admins WHERE id = ${opts.adminId}
      RETURNING id
    ), r AS (
      INSERT INTO refresh_tokens (token_hash, session_id) SELECT ${hashToken(refreshToken)}, id FROM s
    ), t AS (
      DELETE FROM login_throttle WHERE email = ${opts.throttleKey}
    )${rehash}
    SELECT id FROM s`)
  // No row: the account was deleted since the caller read it.
  return rows[0] === undefined ? null : { sessionId: rows[0].id, refreshToken }
}

export type Rotation =
  | { ok: true, sessionId: string, adminId: string, refreshToken: string }
  | { ok: false, revokedSessionId: string | null }

/**
 * Exchanges a refresh token for a new one, in one statement: the token is
 * marked used, its successor stored, the session's idle expiry pushed out
 * (never past its absolute expiry). A token that was already used revokes its
 * whole session (someone else holds a copy); the caller answers 401 either way.
 */
export async function rotateRefreshToken (db: Exec, token: string, ttl: SessionTtl): Promise<Rotation> {
  const hash = hashToken(token)
  const next = randomToken()
  const { rows } = await db.execute<{ sid: string, sub: string }>(sql`
    WITH used AS (
      UPDATE refresh_tokens r SET used_at = now()
      FROM sessions s
      WHERE r.token_hash = ${hash} AND r.used_at IS NULL AND s.id = r.session_id
        AND s.revoked_at IS NULL AND s.expires_at > now() AND s.idle_expires_at > now()
      RETURNING s.id AS sid, s.admin_id AS sub, s.expires_at
    ), fresh AS (
      INSERT INTO refresh_tokens (token_hash, session_id) SELECT ${hashToken(next)}, sid FROM used
    ), touched AS (
      UPDATE sessions SET last_used_at = now(), idle_expires_at = least(now() + make_interval(secs => ${ttl.idle}), used.expires_at)
      FROM used WHERE sessions.id = used.sid
    )
    SELECT sid, sub FROM used`)
  const row = rows[0]
  if (row !== undefined) return { ok: true, sessionId: row.sid, adminId: row.sub, refreshToken: next }
  const reused = await db.execute<{ id: string }>(sql`
    UPDATE sessions s SET revoked_at = now(), revoked_reason = 'refresh_token_reuse'
    FROM refresh_tokens r
    WHERE r.token_hash = ${hash} AND r.used_at IS NOT NULL AND s.id = r.session_id AND s.revoked_at IS NULL
    RETURNING s.id`)
  return { ok: false, revokedSessionId: reused.rows[0]?.id ?? null }
}

/** Ends one live session of an admin; false when it is not theirs or already over (the caller answers 404). */
export async function revokeSession (db: Exec, adminId: string, sessionId: string, reason: string): Promise<boolean> {
  const { rows } = await db.execute<{ id: string }>(sql`
    UPDATE sessions SET revoked_at = now(), revoked_reason = ${reason}
    WHERE id = ${sessionId} AND admin_id = ${adminId} AND revoked_at IS NULL AND expires_at > now() AND idle_expires_at > now()
    RETURNING id`)
  return rows.length === 1
}

/** Ends every live session of an admin, but `except` (the caller's own, on a password change); returns their ids. */
export async function revokeSessions (db: Exec, adminId: string, reason: string, except?: string): Promise<string[]> {
  const { rows } = await db.execute<{ id: string }>(sql`
    UPDATE sessions SET revoked_at = now(), revoked_reason = ${reason}
    WHERE admin_id = ${adminId} AND revoked_at IS NULL${except === undefined ? sql`` : sql` AND id <> ${except}`}
    RETURNING id`)
  return rows.map((r) => r.id)
}

export interface SessionInfo {
  id: string
  createdAt: Date
  lastUsedAt: Date
  idleExpiresAt: Date
  expiresAt: Date
  userAgent: string | null
  ip: string | null
}

/** An admin's live sessions, most recently used first (at most `limit`). */
export async function listSessions (db: Db, adminId: string, limit: number): Promise<SessionInfo[]> {
  return await db.select({
    id: sessions.id,
    createdAt: sessions.createdAt,
    lastUsedAt: sessions.lastUsedAt,
    idleExpiresAt: sessions.idleExpiresAt,
    expiresAt: sessions.expiresAt,
    userAgent: sessions.userAgent,
    ip: sessions.ip
  }).from(sessions)
    .where(and(eq(sessions.adminId, adminId), isNull(sessions.revokedAt), gt(sessions.expiresAt, sql`now()`), gt(sessions.idleExpiresAt, sql`now()`)))
    .orderBy(desc(sessions.lastUsedAt), desc(sessions.id))
    .limit(limit)
}
