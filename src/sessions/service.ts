import type { FastifyBaseLogger } from 'fastify'
import type { LoginBody, MfaChallengeView, MfaLoginBody, TokenPairView } from '../../schemas/sessions.ts'
import { SESSIONS_LISTED } from '../../schemas/sessions.ts'
import type { Config } from '../config.ts'
import type { AdminActor } from '../infra/actor.ts'
import type { Database, Queryable } from '../infra/database.ts'
import { normaliseEmail } from '../infra/email.ts'
import { errors, invalidField } from '../infra/errors.ts'
import { argon2Params, hashPassword, needsRehash, verifyPassword } from '../infra/passwords.ts'
import type { SecretBox } from '../infra/secret-box.ts'
import { matchingStep, recoveryCodeHash } from '../infra/totp.ts'
import { locked, sessionsErrors } from './errors.ts'
import { createSessionsRepository, type SessionInfo, type SessionTtl } from './repository.ts'
import type { LockoutPolicy } from './throttle.ts'

/** What sessions need of the access tokens (plugins/auth.ts). */
export interface AccessTokens {
  issueAccessToken: (adminId: string, sessionId: string, authTime: number) => { accessToken: string, expiresIn: number }
  /** The mfa_token between a login's password and its second factor. */
  mfaTokens: { issue: (adminId: string, email: string) => string, verify: (token: string) => { sub: string, jti: string, email: string, exp: number } | null, ttl: number }
  /** Forget cached liveness of a session on this instance. */
  forgetSession: (sessionId: string) => void
}

export interface SessionsDeps {
  db: Database
  config: Config
  tokens: AccessTokens
  log: FastifyBaseLogger
  /** A hash verified against when the email is unknown, at the configured cost. */
  dummyHash: string
  /** Opens the TOTP secrets stored encrypted (src/infra/secret-box.ts). */
  totpSecrets: Pick<SecretBox, 'open'>
}

/**
 * Logins, refresh-token rotation, logout, the admin's list of sessions, and
 * the login lockout (also counted by sensitive changes of an account: see
 * `checkAttempt`).
 */
export function createSessionsService (deps: SessionsDeps) {
  const { db, config, tokens, log, dummyHash, totpSecrets } = deps
  const repository = createSessionsRepository(db)
  const argon2 = argon2Params(config)
  const ttl: SessionTtl = { idle: config.SESSION_IDLE_TTL, absolute: config.SESSION_ABSOLUTE_TTL }
  const lockout: LockoutPolicy = { threshold: config.LOCKOUT_THRESHOLD, window: config.LOCKOUT_WINDOW, duration: config.LOCKOUT_DURATION }

  function pair (adminId: string, sessionId: string, refreshToken: string, authTime = Math.floor(Date.now() / 1000)): TokenPairView {
    const { accessToken, expiresIn } = tokens.issueAccessToken(adminId, sessionId, authTime)
    return { access_token: accessToken, refresh_token: refreshToken, token_type: 'Bearer', expires_in: expiresIn }
  }

  return {
    repository,

    /**
     * Two statements around one argon2 verify: the first counts the attempt
     * (lockout) and reads the account, its MFA flag with it; the second starts
     * the session. An unknown email verifies against the dummy hash, so it costs
     * the same and fails the same way as a wrong password. With MFA the answer
     * is an mfa_token instead (no second statement: the attempt stays counted
     * until the second factor completes the login).
     */
    async login (body: LoginBody, meta: { userAgent?: string | undefined, ip: string }): Promise<TokenPairView | MfaChallengeView> {
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
      if (row.mfa === true) {
        if (rehash !== undefined) await repository.rehash(row.id, rehash.from, rehash.to)
        return { mfa_required: true, mfa_token: tokens.mfaTokens.issue(row.id, key), expires_in: tokens.mfaTokens.ttl }
      }
      const session = await repository.start({ adminId: row.id, ttl, throttleKey: key, userAgent: meta.userAgent, ip: meta.ip, rehash })
      /* c8 ignore next -- the account was deleted between the two statements of this login (start's null is tested on its own) */
      if (session === null) throw new sessionsErrors.InvalidCredentials()
      return pair(row.id, session.sessionId, session.refreshToken)
    },

    /**
     * The second step of a login with MFA: the mfa_token and a TOTP code (or a
     * recovery code). Two statements around the code's check: the first counts
     * the attempt against the email's lockout (a wrong code counts like a wrong
     * password) and reads the TOTP secret; the second uses up the mfa_token and
     * the code and starts the session (./repository.ts, startWithSecondFactor).
     */
    async completeMfa (body: MfaLoginBody, meta: { userAgent?: string | undefined, ip: string }): Promise<TokenPairView> {
      if ((body.code === undefined) === (body.recovery_code === undefined)) throw invalidField('code', 'give exactly one of code or recovery_code')
      const claims = tokens.mfaTokens.verify(body.mfa_token)
      if (claims === null) throw new sessionsErrors.InvalidMfaToken()
      const row = await repository.attemptMfa(claims.email, claims.sub, lockout)
      if (!row.counted) throw locked(row.retryAfter)
      if (row.id === null || row.mfa !== true || row.totpSecret === null) throw new sessionsErrors.InvalidMfaToken()
      let factor: { step: number } | { recoveryCodeHash: string }
      if (body.code !== undefined) {
        const step = matchingStep(totpSecrets.open(row.totpSecret, row.id), body.code, row.lastStep)
        if (step === null) throw new sessionsErrors.InvalidMfaCode()
        factor = { step }
      } else {
        factor = { recoveryCodeHash: recoveryCodeHash(body.recovery_code as string) }
      }
      const session = await repository.startWithSecondFactor({ adminId: row.id, ttl, throttleKey: claims.email, userAgent: meta.userAgent, ip: meta.ip, jti: claims.jti, expiresAt: claims.exp, factor })
      if (session === null) throw new sessionsErrors.InvalidMfaCode()
      return pair(row.id, session.sessionId, session.refreshToken)
    },

    /**
     * Step-up without a new login: the password (an admin without MFA) or a
     * fresh TOTP code (with MFA; accepted once) proves the admin is still
     * there. Wrong ones count towards the lockout. Answers an access token of
     * the same session whose auth_time is now.
     */
    async reauthenticate (actor: AdminActor, body: { password?: string | undefined, code?: string | undefined }): Promise<{ access_token: string, token_type: 'Bearer', expires_in: number }> {
      const row = await repository.factors(actor.id)
      /* c8 ignore next -- an admin deleted between the session check and this read (its sessions go with it) */
      if (row === null) throw new errors.Unauthorized('The session of this access token has ended')
      const given = row.mfa ? body.code : body.password
      if (given === undefined) throw invalidField(row.mfa ? 'code' : 'password', row.mfa ? 'is required: a current code of your authenticator app' : 'is required')
      const attempt = await repository.countAttempt(normaliseEmail(row.email), lockout)
      if (!attempt.counted) throw locked(attempt.retryAfter)
      let step: number | null = null
      if (row.mfa) {
        step = matchingStep(totpSecrets.open(row.totpSecret as string, actor.id), given, row.lastStep)
        if (step === null) throw new sessionsErrors.InvalidMfaCode()
      } else if (!await verifyPassword(row.passwordHash, given)) {
        throw new sessionsErrors.WrongPassword()
      }
      const authTime = await repository.reauthenticate(actor.id, actor.sessionId, step)
      /* c8 ignore next -- the code's step was used by a concurrent request, or the session ended, since the read above */
      if (authTime === null) throw new sessionsErrors.InvalidMfaCode()
      await repository.clearAttempts(normaliseEmail(row.email))
      const { accessToken, expiresIn } = tokens.issueAccessToken(actor.id, actor.sessionId, authTime)
      return { access_token: accessToken, token_type: 'Bearer', expires_in: expiresIn }
    },

    async refresh (refreshToken: string): Promise<TokenPairView> {
      const rotation = await repository.rotate(refreshToken, ttl)
      if (!rotation.ok) {
        if (rotation.revokedSessionId !== null) {
          tokens.forgetSession(rotation.revokedSessionId)
          log.warn({ sessionId: rotation.revokedSessionId }, 'a used refresh token was presented again: session revoked')
        }
        throw new sessionsErrors.InvalidRefreshToken()
      }
      return pair(rotation.adminId, rotation.sessionId, rotation.refreshToken, rotation.authTime)
    },

    async logout (actor: AdminActor): Promise<void> {
      await repository.revoke(actor.id, actor.sessionId, 'logout')
      tokens.forgetSession(actor.sessionId)
    },

    async list (actor: AdminActor): Promise<Array<SessionInfo & { current: boolean }>> {
      const rows = await repository.list(actor.id, SESSIONS_LISTED)
      return rows.map((s) => ({ ...s, current: s.id === actor.sessionId }))
    },

    /** Ends one of the admin's own sessions; another admin's (or an ended one) is 404. */
    async end (actor: AdminActor, sessionId: string): Promise<void> {
      if (!await repository.revoke(actor.id, sessionId, 'ended')) throw new errors.NotFound(`No live session ${sessionId} of yours`)
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
    },

    /**
     * After a change to what an admin may do (role, MFA): its sessions' cached
     * checks are forgotten on this instance (the others re-read within
     * SESSION_CACHE_TTL), through the same path as an ended session.
     */
    async forgetAdmin (adminId: string): Promise<void> {
      for (const id of await repository.liveIds(adminId)) tokens.forgetSession(id)
    }
  }
}

export type SessionsService = ReturnType<typeof createSessionsService>
