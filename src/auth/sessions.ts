import { and, eq, gt, isNull, sql } from 'drizzle-orm'
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
