import { sql } from 'drizzle-orm'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Config } from '../config.ts'
import type { Database } from '../../plugins/db.ts'
import { errors } from '../errors.ts'
import { recordAudit } from '../audit.ts'
import { hashPassword, needsRehash, verifyPassword, type Argon2Params } from './passwords.ts'
import { emailDomainAllowed, normaliseEmail, type PasswordContext, type PasswordPolicy } from './policy.ts'
import { authErrors, invalidField } from './errors.ts'
import { adminView, deleteAdmin, emailInUse, findAdminById, insertAdmin, updateAdmin, type AdminRow, type AdminView } from './admins.ts'
import { consumeAccountToken, EMAILS_PER_HOUR, issueAccountToken, recentTokenCount, voidAccountTokens } from './account-tokens.ts'
import { listSessions, revokeSession, revokeSessions, rotateRefreshToken, startLoginSession, type SessionInfo, type SessionTtl } from './sessions.ts'
import { clearAttempts, countAttempt, countAttemptCte, retryAfterSql, type LockoutPolicy } from './throttle.ts'
import { csv } from '../config.ts'

export interface TokenPair {
  access_token: string
  refresh_token: string
  token_type: 'Bearer'
  expires_in: number
}

/** Who is asking: the authenticated admin and the request id (for the audit log). */
export interface Actor {
  id: string
  sessionId: string
  requestId: string
}

export interface AccountDeps {
  db: Database
  config: Config
  mail: FastifyInstance['mail']
  auth: FastifyInstance['auth']
  log: FastifyBaseLogger
  policy: PasswordPolicy
  /** A hash verified against when the email is unknown, at the configured cost. */
  dummyHash: string
}

/** Sessions listed by GET /auth/sessions at most. */
export const SESSIONS_LISTED = 100

/** A lockout error, with the seconds to wait (the accounts plugin turns it into Retry-After). */
function locked (seconds: number): Error {
  return Object.assign(new authErrors.LoginLocked(String(seconds)), { retryAfter: seconds })
}

const INVALID_CONFIRM = 'This confirmation link is invalid, expired or already used. Ask for a new one with POST /auth/confirm/resend (or change the email again).'
const INVALID_RESET = 'This password reset link is invalid, expired or already used. Ask for a new one with POST /auth/password/forgot.'

/**
 * Admin accounts: registration, confirmation, login, sessions, profile and
 * password reset. Each change runs in one transaction with its audit event
 * and, when it needs one, its email (transactional outbox). Routes stay thin:
 * they validate, call one of these, and shape the answer.
 */
export function createAccountService (deps: AccountDeps) {
  const { db, config, mail, auth, log, policy, dummyHash } = deps
  const argon2: Argon2Params = { memoryCost: config.ARGON2_MEMORY, timeCost: config.ARGON2_TIME, parallelism: config.ARGON2_PARALLELISM }
  const ttl: SessionTtl = { idle: config.SESSION_IDLE_TTL, absolute: config.SESSION_ABSOLUTE_TTL }
  const lockout: LockoutPolicy = { threshold: config.LOCKOUT_THRESHOLD, window: config.LOCKOUT_WINDOW, duration: config.LOCKOUT_DURATION }
  const domainAllowed = emailDomainAllowed(config.ADMIN_EMAIL_DOMAINS)
  const domains = csv(config.ADMIN_EMAIL_DOMAINS).join(', ')

  // Work done after the answer is sent (resend, forgot): tracked so that close waits for it.
  const pending = new Set<Promise<void>>()
  function later (what: string, work: () => Promise<void>): void {
    const task: Promise<void> = work()
      .catch((err: unknown) => { log.error({ err }, `${what} failed`) })
      .finally(() => { pending.delete(task) })
    pending.add(task)
  }

  function pair (adminId: string, sessionId: string, refreshToken: string): TokenPair {
    const { accessToken, expiresIn } = auth.issueAccessToken(adminId, sessionId)
    return { access_token: accessToken, refresh_token: refreshToken, token_type: 'Bearer', expires_in: expiresIn }
  }

  function checkPassword (password: string, account: PasswordContext): void {
    const problem = policy(password, account)
    if (problem !== null) throw invalidField('password', problem)
  }

  function checkDomain (email: string): void {
    if (!domainAllowed(email)) throw new authErrors.EmailDomainNotAllowed(domains)
  }

  function forget (sessionIds: string[]): void {
    for (const id of sessionIds) auth.forgetSession(id)
  }

  async function current (actor: Actor): Promise<AdminRow> {
    const row = await findAdminById(db, actor.id)
    /* c8 ignore next -- an admin deleted between the session check and this read (its sessions go with it) */
    if (row === null) throw new errors.Unauthorized('The session of this access token has ended')
    return row
  }

  /**
   * Verifies currentPassword for a sensitive change. Each try counts against
   * the account's login lockout, so a stolen access token cannot be used to
   * guess the password faster than a login could.
   */
  async function verifyCurrentPassword (row: AdminRow, given: string | undefined, what: string): Promise<void> {
    if (given === undefined) throw invalidField('currentPassword', `is required to ${what}`)
    const attempt = await countAttempt(db, normaliseEmail(row.email), lockout)
    if (!attempt.counted) throw locked(attempt.retryAfter)
    if (!await verifyPassword(row.passwordHash, given)) throw new authErrors.WrongPassword()
  }

  /**
   * Sends one more email of a kind to the account with this address (for
   * confirm_account: only while unconfirmed), unless EMAILS_PER_HOUR went out
   * already. The account row is locked meanwhile, so concurrent asks count right.
   */
  async function sendTokenEmail (email: string, purpose: 'confirm_account' | 'reset_password'): Promise<void> {
    await db.transaction(async (tx) => {
      const { rows: [row] } = await tx.execute<{ id: string, name: string, email: string }>(sql`
        SELECT id, name, email FROM admins
        WHERE lower(email) = ${normaliseEmail(email)}${purpose === 'confirm_account' ? sql` AND confirmed_at IS NULL` : sql``}
        FOR UPDATE`)
      if (row === undefined) return
      if (await recentTokenCount(tx, row.id, purpose) >= EMAILS_PER_HOUR) {
        log.info({ adminId: row.id, purpose }, 'email not sent: hourly limit for this account reached')
        return
      }
      const token = await issueAccountToken(tx, row.id, purpose)
      await mail.enqueue(tx, { template: purpose, to: row.email, data: { name: row.name, token } })
    })
  }

  return {
    /** Resolves once the work left running after answers (resend, forgot) is done. */
    async drain (): Promise<void> {
      await Promise.all([...pending])
    },

    async register (body: { email: string, name: string, password: string }, requestId: string): Promise<AdminView> {
      if (config.REGISTRATION === 'closed') throw new authErrors.RegistrationClosed()
      checkDomain(body.email)
      checkPassword(body.password, { emails: [body.email], names: [body.name] })
      const passwordHash = await hashPassword(body.password, argon2)
      return await db.transaction(async (tx) => {
        const row = await insertAdmin(tx, { email: body.email, name: body.name, passwordHash, confirmed: false })
        const token = await issueAccountToken(tx, row.id, 'confirm_account')
        await mail.enqueue(tx, { template: 'confirm_account', to: row.email, data: { name: row.name, token } })
        await recordAudit(tx, { actorId: null, action: 'admin.register', targetType: 'admin', targetId: row.id, requestId, changes: { email: row.email, name: row.name } })
        return adminView(row)
      })
    },

    /** Uses a confirmation link: confirms the account, or makes a pending email address the admin's. */
    async confirm (token: string, requestId: string): Promise<{ purpose: 'account' | 'email', email: string }> {
      return await db.transaction(async (tx) => {
        const use = await consumeAccountToken(tx, token, ['confirm_account', 'confirm_email'])
        if (use === null) throw new authErrors.InvalidLink(INVALID_CONFIRM)
        if (use.purpose === 'confirm_account') {
          const row = await updateAdmin(tx, use.adminId, { confirmedAt: sql`coalesce(confirmed_at, now())` }) as AdminRow
          await recordAudit(tx, { actorId: use.adminId, action: 'admin.confirm', targetType: 'admin', targetId: use.adminId, requestId, changes: { confirmed: true } })
          return { purpose: 'account' as const, email: row.email }
        }
        const row = await findAdminById(tx, use.adminId) as AdminRow
        const email = use.email as string // confirm_email tokens always carry their address
        // Only the latest requested address can be confirmed. Older links are voided whenever
        // pendingEmail changes, so this only guards against a change made some other way.
        /* c8 ignore next */
        if (row.pendingEmail !== email) throw new authErrors.InvalidLink(INVALID_CONFIRM)
        await updateAdmin(tx, row.id, { email, pendingEmail: null })
        await recordAudit(tx, { actorId: row.id, action: 'admin.email_change', targetType: 'admin', targetId: row.id, requestId, changes: { email } })
        return { purpose: 'email' as const, email }
      })
    },

    /** Queues a new confirmation email when an unconfirmed account has this address; the caller has answered 202 already. */
    resendConfirmation (email: string): void {
      later('resending a confirmation email', async () => { await sendTokenEmail(email, 'confirm_account') })
    },

    /** Queues a password reset email when an account has this address; the caller has answered 202 already. */
    forgotPassword (email: string): void {
      later('sending a password reset email', async () => { await sendTokenEmail(email, 'reset_password') })
    },

    /**
     * Two statements around one argon2 verify: the first counts the attempt
     * (lockout) and reads the account; the second starts the session. An
     * unknown email verifies against the dummy hash, so it costs the same and
     * fails the same way as a wrong password.
     */
    async login (body: { email: string, password: string }, meta: { userAgent?: string | undefined, ip: string }): Promise<TokenPair> {
      const key = normaliseEmail(body.email)
      const { rows } = await db.execute<{ counted: boolean, retry_after: number, id: string | null, password_hash: string | null, confirmed: boolean | null }>(sql`
        WITH ${countAttemptCte(key, lockout)}
        SELECT EXISTS (SELECT 1 FROM attempt) AS counted, ${retryAfterSql(key, lockout)} AS retry_after,
          a.id, a.password_hash, a.confirmed_at IS NOT NULL AS confirmed
        FROM (SELECT 1) AS one LEFT JOIN admins a ON lower(a.email) = ${key}`)
      const row = rows[0] as NonNullable<typeof rows[0]>
      if (!row.counted) throw locked(row.retry_after)
      const stored = row.password_hash ?? dummyHash
      const verified = await verifyPassword(stored, body.password)
      if (!verified || row.id === null) throw new authErrors.InvalidCredentials()
      if (row.confirmed !== true) {
        await clearAttempts(db, key)
        throw new authErrors.NotConfirmed()
      }
      const rehash = needsRehash(stored, argon2) ? { from: stored, to: await hashPassword(body.password, argon2) } : undefined
      const session = await startLoginSession(db, { adminId: row.id, ttl, throttleKey: key, userAgent: meta.userAgent, ip: meta.ip, rehash })
      /* c8 ignore next -- the account was deleted between the two statements of this login (startLoginSession's null is tested on its own) */
      if (session === null) throw new authErrors.InvalidCredentials()
      return pair(row.id, session.sessionId, session.refreshToken)
    },

    async refresh (refreshToken: string): Promise<TokenPair> {
      const rotation = await rotateRefreshToken(db, refreshToken, ttl)
      if (!rotation.ok) {
        if (rotation.revokedSessionId !== null) {
          auth.forgetSession(rotation.revokedSessionId)
          log.warn({ sessionId: rotation.revokedSessionId }, 'a used refresh token was presented again: session revoked')
        }
        throw new authErrors.InvalidRefreshToken()
      }
      return pair(rotation.adminId, rotation.sessionId, rotation.refreshToken)
    },

    async logout (actor: Actor): Promise<void> {
      await revokeSession(db, actor.id, actor.sessionId, 'logout')
      auth.forgetSession(actor.sessionId)
    },

    async sessions (actor: Actor): Promise<Array<SessionInfo & { current: boolean }>> {
      const rows = await listSessions(db, actor.id, SESSIONS_LISTED)
      return rows.map((s) => ({ ...s, current: s.id === actor.sessionId }))
    },

    /** Ends one of the admin's own sessions; another admin's (or an ended one) is 404. */
    async endSession (actor: Actor, sessionId: string): Promise<void> {
      if (!await revokeSession(db, actor.id, sessionId, 'ended')) throw new errors.NotFound(`No live session ${sessionId} of yours`)
      auth.forgetSession(sessionId)
    },

    async me (actor: Actor): Promise<AdminView> {
      return adminView(await current(actor))
    },

    /**
     * Name changes at once. A new email waits for its confirmation link (sent to
     * the new address) and needs currentPassword; so does a new password, which
     * ends every other session.
     */
    async updateMe (actor: Actor, body: { name?: string | undefined, email?: string | undefined, password?: string | undefined, currentPassword?: string | undefined }): Promise<AdminView> {
      if (body.name === undefined && body.email === undefined && body.password === undefined) throw new authErrors.NothingToChange()
      const row = await current(actor)
      const newName = body.name !== undefined && body.name !== row.name ? body.name : undefined
      const newEmail = body.email !== undefined && normaliseEmail(body.email) !== normaliseEmail(row.email) ? body.email : undefined
      const cancelPending = body.email !== undefined && newEmail === undefined && row.pendingEmail !== null
      const newPassword = body.password
      if (newEmail !== undefined) checkDomain(newEmail)
      if (newPassword !== undefined) checkPassword(newPassword, { emails: [row.email, newEmail], names: [row.name, newName] })
      if (newEmail !== undefined || newPassword !== undefined) {
        await verifyCurrentPassword(row, body.currentPassword, newPassword !== undefined ? 'change the password' : 'change the email')
      }
      if (newEmail !== undefined && await emailInUse(db, newEmail, row.id)) throw new authErrors.EmailTaken()
      const passwordHash = newPassword === undefined ? undefined : await hashPassword(newPassword, argon2)

      let ended: string[] = []
      const updated = await db.transaction(async (tx) => {
        const audit = (action: 'admin.update' | 'admin.email_change' | 'admin.password_change', changes: Record<string, unknown>) =>
          recordAudit(tx, { actorId: actor.id, action, targetType: 'admin', targetId: row.id, requestId: actor.requestId, changes })
        const set: Partial<AdminRow> = {}
        if (newName !== undefined) {
          set.name = newName
          await audit('admin.update', { name: newName })
        }
        if (newEmail !== undefined || cancelPending) {
          set.pendingEmail = newEmail ?? null
          await voidAccountTokens(tx, row.id, 'confirm_email')
          await audit('admin.email_change', { pendingEmail: newEmail ?? null })
        }
        if (newEmail !== undefined) {
          const token = await issueAccountToken(tx, row.id, 'confirm_email', newEmail)
          await mail.enqueue(tx, { template: 'confirm_email', to: newEmail, data: { name: newName ?? row.name, token } })
        }
        if (passwordHash !== undefined) {
          set.passwordHash = passwordHash
          await voidAccountTokens(tx, row.id, 'reset_password')
          ended = await revokeSessions(tx, row.id, 'password_change', actor.sessionId)
          await audit('admin.password_change', { password: '[changed]' })
        }
        if (newEmail !== undefined || newPassword !== undefined) await clearAttempts(tx, normaliseEmail(row.email))
        if (Object.keys(set).length === 0) return row
        return await updateAdmin(tx, row.id, set) as AdminRow
      })
      forget(ended)
      return adminView(updated)
    },

    /** Deletes the admin for real: its sessions and tokens go, users it created stay (createdBy becomes null). */
    async deleteMe (actor: Actor, currentPassword: string): Promise<void> {
      const row = await current(actor)
      await verifyCurrentPassword(row, currentPassword, 'delete the account')
      let ended: string[] = []
      await db.transaction(async (tx) => {
        ended = await revokeSessions(tx, row.id, 'deleted')
        await recordAudit(tx, { actorId: actor.id, action: 'admin.delete', targetType: 'admin', targetId: row.id, requestId: actor.requestId, changes: { email: row.email, name: row.name } })
        await deleteAdmin(tx, row.id)
        await clearAttempts(tx, normaliseEmail(row.email))
      })
      forget([...ended, actor.sessionId])
    },

    /**
     * Sets a new password with an emailed reset token; every session of the
     * account ends. The token is used up in the same transaction, so a refused
     * password (rolled back) leaves it usable; a reset voids the account's
     * other reset links.
     */
    async resetPassword (token: string, password: string, requestId: string): Promise<void> {
      const ended = await db.transaction(async (tx) => {
        const use = await consumeAccountToken(tx, token, ['reset_password'])
        if (use === null) throw new authErrors.InvalidLink(INVALID_RESET)
        const row = await findAdminById(tx, use.adminId) as AdminRow
        checkPassword(password, { emails: [row.email], names: [row.name] })
        await updateAdmin(tx, row.id, { passwordHash: await hashPassword(password, argon2) })
        await voidAccountTokens(tx, row.id, 'reset_password')
        const ended = await revokeSessions(tx, row.id, 'password_reset')
        await clearAttempts(tx, normaliseEmail(row.email))
        await recordAudit(tx, { actorId: null, action: 'admin.password_reset', targetType: 'admin', targetId: row.id, requestId, changes: { password: '[changed]' } })
        return ended
      })
      forget(ended)
    }
  }
}

export type AccountService = ReturnType<typeof createAccountService>
