import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { LoginBody, MfaChallengeView, MfaLoginBody, TokenPairView } from '../../schemas/sessions.ts'
import { SESSIONS_LISTED } from '../../schemas/sessions.ts'
import type { Config } from '../config.ts'
import type { AdminActor } from '../infra/actor.ts'
import { clientKey } from '../infra/client-key.ts'
import type { Database, Queryable } from '../infra/database.ts'
import { normaliseEmail } from '../infra/email.ts'
import { errors, invalidField } from '../infra/errors.ts'
import { argon2Params, hashPassword, needsRehash, verifyPassword } from '../infra/passwords.ts'
import { RATE_LIMITED, type StatementCount } from '../infra/rate-limit-store.ts'
import type { SecretBox } from '../infra/secret-box.ts'
import { matchingStep, recoveryCodeHash } from '../infra/totp.ts'
import { locked, sessionsErrors } from './errors.ts'
import { createSessionsRepository, type Attempt, type SessionInfo, type SessionTtl } from './repository.ts'
import { SETTLE_SECONDS, type LockoutPolicy } from './throttle.ts'

/** What sessions need of the access tokens (plugins/auth.ts). */
export interface AccessTokens {
  issueAccessToken: (adminId: string, sessionId: string, authTime: number) => { accessToken: string, expiresIn: number }
  /** The mfa_token between a login's password and its second factor. */
  mfaTokens: { issue: (adminId: string, email: string) => string, verify: (token: string) => Promise<{ sub: string, jti: string, email: string, exp: number } | null>, ttl: number }
  /** Forgets the cached checks of sessions, on this instance and (NOTIFY) on every other one. */
  forgetSessions: (sessionIds: string[]) => Promise<void>
}

/**
 * How a login step ended (roster_login_attempts_total{outcome}): the password
 * step answers `success` or, with MFA, `mfa_required`; the second step
 * `success`; either may be refused (`invalid_credentials` the password,
 * `invalid_mfa_code`, `invalid_mfa_token`, `not_confirmed`, `locked` by the
 * lockout) or fail otherwise (`error`: a malformed second step, the database).
 */
export type LoginOutcome = 'success' | 'mfa_required' | 'invalid_credentials' | 'invalid_mfa_code' | 'invalid_mfa_token' | 'not_confirmed' | 'locked' | 'error'
export const LOGIN_OUTCOMES: readonly LoginOutcome[] = ['success', 'mfa_required', 'invalid_credentials', 'invalid_mfa_code', 'invalid_mfa_token', 'not_confirmed', 'locked', 'error']

/** The outcome of a refused login step, by its error's code. */
const REFUSED: Record<string, LoginOutcome> = {
  ROSTER_INVALID_CREDENTIALS: 'invalid_credentials',
  ROSTER_INVALID_MFA_CODE: 'invalid_mfa_code',
  ROSTER_INVALID_MFA_TOKEN: 'invalid_mfa_token',
  ROSTER_ACCOUNT_NOT_CONFIRMED: 'not_confirmed',
  ROSTER_LOGIN_LOCKED: 'locked'
}

/** What sessions report to operators (plugins/metrics.ts counts it). */
export interface SessionSignals {
  /** A refresh token was presented again after its use: its session was revoked. */
  refreshTokenReuse: () => void
  /** A login step (password, or second factor) ended so. */
  loginOutcome: (outcome: LoginOutcome) => void
  /** An attempt locked a lockout key: the email from one client address, or the email from anywhere (./throttle.ts). */
  lockout: (key: LockoutKey) => void
}

/** The lockout's keys (roster_lockouts_total{key}). */
export type LockoutKey = 'client' | 'account'
export const LOCKOUT_KEYS: readonly LockoutKey[] = ['client', 'account']

export interface SessionsDeps {
  db: Database
  config: Config
  tokens: AccessTokens
  log: FastifyBaseLogger
  /** A hash verified against when the email is unknown, at the configured cost. */
  dummyHash: string
  /** Opens the TOTP secrets stored encrypted (src/infra/secret-box.ts). */
  totpSecrets: Pick<SecretBox, 'open'>
  signals: SessionSignals
}

/**
 * Logins, refresh-token rotation, logout, the admin's list of sessions, and
 * the login lockout (also counted by sensitive changes of an account: see
 * `checkAttempt`).
 */
export function createSessionsService (deps: SessionsDeps) {
  const { db, config, tokens, log, dummyHash, totpSecrets, signals } = deps
  const repository = createSessionsRepository(db)
  const argon2 = argon2Params(config)
  const ttl: SessionTtl = { idle: config.SESSION_IDLE_TTL, absolute: config.SESSION_ABSOLUTE_TTL }
  const lockout: LockoutPolicy = {
    threshold: config.LOCKOUT_THRESHOLD,
    accountThreshold: config.LOCKOUT_ACCOUNT_THRESHOLD,
    window: config.LOCKOUT_WINDOW,
    duration: config.LOCKOUT_DURATION
  }

  /** This instance, as the lockout's rows name who counted an attempt. */
  const instance = randomUUID()
  /** Attempts this instance is counting or checking, by email. */
  const checking = new Map<string, number>()

  /**
   * Runs `work` for an attempt on `email`: counts it (`attempt`, one
   * statement; a key it locked is reported to `signals`), then `work` with the counted row. A lock that attempts being
   * checked may still undo (./throttle.ts: this instance's own, or other
   * instances' counted in the last SETTLE_SECONDS) is waited out, the statement
   * run again now and then, until the attempt is counted or the lock is final:
   * then the lockout's 429.
   */
  async function attempting<A extends Attempt, T> (email: string, attempt: () => Promise<A>, work: (row: A) => Promise<T>): Promise<T> {
    checking.set(email, (checking.get(email) ?? 0) + 1)
    try {
      const deadline = Date.now() + (SETTLE_SECONDS + 1) * 1000
      // Every run of the statement may lock a key (even one that took no attempt on the account key).
      const counting = async (): Promise<A> => {
        const counted = await attempt()
        if (counted.lockedClient) signals.lockout('client')
        if (counted.lockedAccount) signals.lockout('account')
        return counted
      }
      let row = await counting()
      const undoable = (): boolean => row.settlesIn > 0 || (checking.get(email) as number) > 1
      for (let pause = 20; !row.counted && undoable() && Date.now() < deadline; pause = Math.min(pause * 2, 500)) {
        await sleep(pause * (0.5 + Math.random()))
        row = await counting()
      }
      if (!row.counted) throw locked(row.retryAfter)
      return await work(row)
    } finally {
      const left = (checking.get(email) as number) - 1
      if (left === 0) checking.delete(email)
      else checking.set(email, left)
    }
  }

  /** The request's rate-limit count for a step's attempt statement: its first run only (a lock being waited out runs it again). */
  function once (rate: StatementCount): () => StatementCount | undefined {
    let left: StatementCount | undefined = rate
    return () => {
      const first = left
      left = undefined
      return first
    }
  }

  /** Runs `check`; a request it refuses is counted against the rate limit on its own first (its 429 answered instead when over). */
  async function refusedCounted<T> (rate: StatementCount, check: () => Promise<T>): Promise<T> {
    try {
      return await check()
    } catch (err) {
      await rate.alone()
      throw err
    }
  }

  /** Runs a login step, reporting how it ended (a request over the rate limit is no login attempt). */
  async function counted<T extends object> (step: () => Promise<T>): Promise<T> {
    try {
      const answer = await step()
      signals.loginOutcome('mfa_token' in answer ? 'mfa_required' : 'success')
      return answer
    } catch (err) {
      const code = String((err as { code?: unknown }).code)
      if (code !== RATE_LIMITED) signals.loginOutcome(REFUSED[code] ?? 'error')
      throw err
    }
  }

  function pair (adminId: string, sessionId: string, refreshToken: string, authTime = Math.floor(Date.now() / 1000)): TokenPairView {
    const { accessToken, expiresIn } = tokens.issueAccessToken(adminId, sessionId, authTime)
    return { access_token: accessToken, refresh_token: refreshToken, token_type: 'Bearer', expires_in: expiresIn }
  }

  return {
    repository,

    /**
     * Two statements around one argon2 verify: the first counts the request
     * against the /auth rate limit (`meta.rateLimit`: the route's count, left to
     * this statement) and, within it, the attempt (lockout), and reads the
     * account, its MFA flag with it; the second starts
     * the session and gives the attempt back. An unknown email verifies against
     * the dummy hash, so it costs the same and fails the same way as a wrong
     * password. With MFA the answer is an mfa_token instead (no second
     * statement: the attempt stays counted until the second factor completes
     * the login, which gives both back).
     */
    async login (body: LoginBody, meta: { userAgent?: string | undefined, ip: string, rateLimit: StatementCount }): Promise<TokenPairView | MfaChallengeView> {
      return await counted(async () => {
        const email = normaliseEmail(body.email)
        const client = clientKey(meta.ip)
        const rate = once(meta.rateLimit)
        return await attempting(email, async () => await repository.attemptLogin(email, client, lockout, instance, rate()), async (row) => {
          const stored = row.passwordHash ?? dummyHash
          const verified = await verifyPassword(stored, body.password)
          if (!verified || row.id === null) throw new sessionsErrors.InvalidCredentials()
          if (row.confirmed !== true) {
            await repository.giveBack(email, client, lockout)
            throw new sessionsErrors.NotConfirmed()
          }
          const rehash = needsRehash(stored, argon2) ? { from: stored, to: await hashPassword(body.password, argon2) } : undefined
          if (row.mfa === true) {
            if (rehash !== undefined) await repository.rehash(row.id, rehash.from, rehash.to)
            return { mfa_required: true, mfa_token: tokens.mfaTokens.issue(row.id, email), expires_in: tokens.mfaTokens.ttl }
          }
          const session = await repository.start({ adminId: row.id, ttl, throttle: { email, client, policy: lockout }, userAgent: meta.userAgent, ip: meta.ip, rehash })
          /* c8 ignore next -- the account was deleted between the two statements of this login (start's null is tested on its own) */
          if (session === null) throw new sessionsErrors.InvalidCredentials()
          return pair(row.id, session.sessionId, session.refreshToken)
        })
      })
    },

    /**
     * The second step of a login with MFA: the mfa_token and a TOTP code (or a
     * recovery code). Two statements around the code's check: the first counts
     * the request against the /auth rate limit and, within it, the attempt
     * against the email's lockout (a wrong code counts like a wrong password)
     * and reads the TOTP secret (a request refused before it, a malformed step
     * or a bad mfa_token, is counted against the rate limit on its own); the
     * second uses up the mfa_token and
     * the code, starts the session and gives back the login's two attempts
     * (./repository.ts, startWithSecondFactor).
     */
    async completeMfa (body: MfaLoginBody, meta: { userAgent?: string | undefined, ip: string, rateLimit: StatementCount }): Promise<TokenPairView> {
      return await counted(async () => {
        const claims = await refusedCounted(meta.rateLimit, async () => {
          if ((body.code === undefined) === (body.recovery_code === undefined)) throw invalidField('code', 'give exactly one of code or recovery_code')
          const verified = await tokens.mfaTokens.verify(body.mfa_token)
          if (verified === null) throw new sessionsErrors.InvalidMfaToken()
          return verified
        })
        const { email } = claims
        const client = clientKey(meta.ip)
        const rate = once(meta.rateLimit)
        return await attempting(email, async () => await repository.attemptMfa(email, client, claims.sub, lockout, instance, rate()), async (row) => {
          if (row.id === null || row.mfa !== true || row.totpSecret === null) throw new sessionsErrors.InvalidMfaToken()
          let factor: { step: number } | { recoveryCodeHash: string }
          if (body.code !== undefined) {
            const step = matchingStep(totpSecrets.open(row.totpSecret, row.id), body.code, row.lastStep)
            if (step === null) throw new sessionsErrors.InvalidMfaCode()
            factor = { step }
          } else {
            factor = { recoveryCodeHash: recoveryCodeHash(body.recovery_code as string) }
          }
          const session = await repository.startWithSecondFactor({ adminId: row.id, ttl, throttle: { email, client, policy: lockout }, userAgent: meta.userAgent, ip: meta.ip, jti: claims.jti, expiresAt: claims.exp, factor })
          if (session === null) throw new sessionsErrors.InvalidMfaCode()
          return pair(row.id, session.sessionId, session.refreshToken)
        })
      })
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
      const email = normaliseEmail(row.email)
      const client = clientKey(actor.ip)
      return await attempting(email, async () => await repository.countAttempt(email, client, lockout, instance), async () => {
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
        await repository.giveBack(email, client, lockout)
        const { accessToken, expiresIn } = tokens.issueAccessToken(actor.id, actor.sessionId, authTime)
        return { access_token: accessToken, token_type: 'Bearer' as const, expires_in: expiresIn }
      })
    },

    async refresh (refreshToken: string): Promise<TokenPairView> {
      const rotation = await repository.rotate(refreshToken, ttl, config.REFRESH_REUSE_INTERVAL)
      if (!rotation.ok) {
        if (rotation.revokedSessionId !== null) {
          await tokens.forgetSessions([rotation.revokedSessionId])
          signals.refreshTokenReuse()
          log.warn({ sessionId: rotation.revokedSessionId }, 'a used refresh token was presented again after REFRESH_REUSE_INTERVAL: session revoked')
        }
        throw new sessionsErrors.InvalidRefreshToken()
      }
      return pair(rotation.adminId, rotation.sessionId, rotation.refreshToken, rotation.authTime)
    },

    async logout (actor: AdminActor): Promise<void> {
      await repository.revoke(actor.id, actor.sessionId, 'logout')
      await tokens.forgetSessions([actor.sessionId])
    },

    async list (actor: AdminActor): Promise<Array<SessionInfo & { current: boolean }>> {
      const rows = await repository.list(actor.id, SESSIONS_LISTED)
      return rows.map((s) => ({ ...s, current: s.id === actor.sessionId }))
    },

    /** Ends one of the admin's own sessions; another admin's (or an ended one) is 404. */
    async end (actor: AdminActor, sessionId: string): Promise<void> {
      if (!await repository.revoke(actor.id, sessionId, 'ended')) throw new errors.NotFound(`No live session ${sessionId} of yours`)
      await tokens.forgetSessions([sessionId])
    },

    /**
     * Counts a password try for an account's email from the actor's address
     * against its login lockout (a sensitive change verifying currentPassword),
     * then runs `check` (the verification); throws the lockout 429 while it is locked.
     */
    async checkAttempt<T> (email: string, ip: string, check: () => Promise<T>): Promise<T> {
      const key = normaliseEmail(email)
      return await attempting(key, async () => await repository.countAttempt(key, clientKey(ip), lockout, instance), check)
    },

    /** Forgets the failed attempts of an email (its password was just proven or changed). */
    async clearAttempts (email: string, tx?: Queryable): Promise<void> {
      await repository.clearAttempts(normaliseEmail(email), tx)
    },

    /** Ends every live session of an admin, but `except`, in the caller's transaction; call `forget` with the ids once it committed. */
    endAll: repository.revokeAll,

    /**
     * THE way an ended session takes effect everywhere: its cached check is
     * forgotten on this instance at once and on the others as soon as they
     * get the notification (SESSION_CACHE_TTL when one is missed). Call it once
     * the transaction that ended them committed.
     */
    async forget (sessionIds: string[]): Promise<void> {
      await tokens.forgetSessions(sessionIds)
    },

    /**
     * After a change to what an admin may do (role, MFA): its sessions' cached
     * checks (which hold the role and MFA state) are forgotten everywhere,
     * through the same path as an ended session.
     */
    async forgetAdmin (adminId: string): Promise<void> {
      await tokens.forgetSessions(await repository.liveIds(adminId))
    }
  }
}

export type SessionsService = ReturnType<typeof createSessionsService>
