import type { FastifyBaseLogger } from 'fastify'
import type { LoginBody, TokenPairView } from '../../schemas/sessions.ts'
import { SESSIONS_LISTED } from '../../schemas/sessions.ts'
import type { Config } from '../config.ts'
import type { Actor } from '../infra/actor.ts'
import type { Database, Queryable } from '../infra/database.ts'
import { normaliseEmail } from '../infra/email.ts'
import { errors } from '../infra/errors.ts'
import { argon2Params, hashPassword, needsRehash, verifyPassword } from '../infra/passwords.ts'
import { locked, sessionsErrors } from './errors.ts'
import { createSessionsRepository, type SessionInfo, type SessionTtl } from './repository.ts'
import type { LockoutPolicy } from './throttle.ts'

/** What sessions need of the access tokens (plugins/auth.ts). */
export interface AccessTokens {
  issueAccessToken: (adminId: string, sessionId: string) => { accessToken: string, expiresIn: number }
  /** Forget cached liveness of a session on this instance. */
  forgetSession: (sessionId: string) => void
}

/** What sessions report to operators (plugins/metrics.ts counts it). */
export interface SessionSignals {
  /** A refresh token was presented again after its use: its session was revoked. */
  refreshTokenReuse: () => void
}

export interface SessionsDeps {
  db: Database
  config: Config
  tokens: AccessTokens
  log: FastifyBaseLogger
  /** A hash verified against when the email is unknown, at the configured cost. */
  dummyHash: string
  signals: SessionSignals
}

/**
 * Logins, refresh-token rotation, logout, the admin's list of sessions, and
 * the login lockout (also counted by sensitive changes of an account: see
 * `checkAttempt`).
 */
export function createSessionsService (deps: SessionsDeps) {
  const { db, config, tokens, log, dummyHash, signals } = deps
  const repository = createSessionsRepository(db)
  const argon2 = argon2Params(config)
  const ttl: SessionTtl = { idle: config.SESSION_IDLE_TTL, absolute: config.SESSION_ABSOLUTE_TTL }
  const lockout: LockoutPolicy = { threshold: config.LOCKOUT_THRESHOLD, window: config.LOCKOUT_WINDOW, duration: config.LOCKOUT_DURATION }

  function pair (adminId: string, sessionId: string, refreshToken: string): TokenPairView {
    const { accessToken, expiresIn } = tokens.issueAccessToken(adminId, sessionId)
    return { access_token: accessToken, refresh_token: refreshToken, token_type: 'Bearer', expires_in: expiresIn }
  }

  return {
    repository,

    /**
     * Two statements around one argon2 verify: the first counts the attempt
     * (lockout) and reads the account; the second starts the session. An
     * unknown email verifies against the dummy hash, so it costs the same and
     * fails the same way as a wrong password.
     */
    async login (body: LoginBody, meta: { userAgent?: string | undefined, ip: string }): Promise<TokenPairView> {
      const key = normaliseEmail(body.email)
      const row = await repository.attemptLogin(key, lockout)
      if (!row.counted) throw locked(row.retryAfter)
      const stored = row.passwordHash ?? dummyHash
      const verified = await verifyPassword(stored, body.password)
      if (!verified || row.id === null) throw new sessionsErrors.InvalidCredentials()
      if (row.confirmed !== true) {
        await repository.clearAttempts(key)
        throw new sessionsErrors.NotConfirmed()
      }
      const rehash = needsRehash(stored, argon2) ? { from: stored, to: await hashPassword(body.password, argon2) } : undefined
      const session = await repository.start({ adminId: row.id, ttl, throttleKey: key, userAgent: meta.userAgent, ip: meta.ip, rehash })
      /* c8 ignore next -- the account was deleted between the two statements of this login (start's null is tested on its own) */
      if (session === null) throw new sessionsErrors.InvalidCredentials()
      return pair(row.id, session.sessionId, session.refreshToken)
    },

    async refresh (refreshToken: string): Promise<TokenPairView> {
      const rotation = await repository.rotate(refreshToken, ttl)
      if (!rotation.ok) {
        if (rotation.revokedSessionId !== null) {
          tokens.forgetSession(rotation.revokedSessionId)
          signals.refreshTokenReuse()
          log.warn({ sessionId: rotation.revokedSessionId }, 'a used refresh token was presented again: session revoked')
        }
        throw new sessionsErrors.InvalidRefreshToken()
      }
      return pair(rotation.adminId, rotation.sessionId, rotation.refreshToken)
    },

    async logout (actor: Actor): Promise<void> {
      await repository.revoke(actor.adminId, actor.sessionId, 'logout')
      tokens.forgetSession(actor.sessionId)
    },

    async list (actor: Actor): Promise<Array<SessionInfo & { current: boolean }>> {
      const rows = await repository.list(actor.adminId, SESSIONS_LISTED)
      return rows.map((s) => ({ ...s, current: s.id === actor.sessionId }))
    },

    /** Ends one of the admin's own sessions; another admin's (or an ended one) is 404. */
    async end (actor: Actor, sessionId: string): Promise<void> {
      if (!await repository.revoke(actor.adminId, sessionId, 'ended')) throw new errors.NotFound(`No live session ${sessionId} of yours`)
      tokens.forgetSession(sessionId)
    },

    /**
     * Counts a password try for an account's email against its login lockout
     * (a sensitive change verifying currentPassword); throws the lockout 429
     * while it is locked.
     */
    async checkAttempt (email: string): Promise<void> {
      const attempt = await repository.countAttempt(normaliseEmail(email), lockout)
      if (!attempt.counted) throw locked(attempt.retryAfter)
    },

    /** Forgets the failed attempts of an email (its password was just proven or changed). */
    async clearAttempts (email: string, tx?: Queryable): Promise<void> {
      await repository.clearAttempts(normaliseEmail(email), tx)
    },

    /** Ends every live session of an admin, but `except`, in the caller's transaction; call `forget` with the ids once it committed. */
    endAll: repository.revokeAll,

    /** Forgets the cached liveness of ended sessions on this instance. */
    forget (sessionIds: string[]): void {
      for (const id of sessionIds) tokens.forgetSession(id)
    }
  }
}

export type SessionsService = ReturnType<typeof createSessionsService>
