import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { AdminChangesBody, AdminSummaryView, AdminView, Confirmation, RegistrationBody, Role } from '../../schemas/admins.ts'
import type { AuditAction, AuditService } from '../audit/service.ts'
import { csv, registration, type Config } from '../config.ts'
import type { MailService } from '../mail/service.ts'
import type { SessionsService } from '../sessions/service.ts'
import type { WebhookEvent, WebhooksService } from '../webhooks/service.ts'
import { requireRecentLogin, type Actor, type AdminActor } from '../infra/actor.ts'
import { createBackground } from '../infra/background.ts'
import { transaction, type Database, type Queryable } from '../infra/database.ts'
import { normaliseEmail } from '../infra/email.ts'
import { errors, invalidField } from '../infra/errors.ts'
import { createLister, type Page, type PageQuery } from '../infra/paging/lister.ts'
import { argon2Params, hashPassword, verifyPassword } from '../infra/passwords.ts'
import { adminsErrors } from './errors.ts'
import { emailDomainAllowed, type PasswordContext, type PasswordPolicy } from './policy.ts'
import { ADMINS_LIST, createAdminsRepository, type AdminChange, type AdminRow, type AdminsRepository } from './repository.ts'

/** At most this many emails of one kind per account per hour (against mail bombing through resend/forgot). */
export const EMAILS_PER_HOUR = 5

const INVALID_CONFIRM = 'This confirmation link is invalid, expired or already used. Ask for a new one with POST /auth/confirm/resend (or change the email again).'
const INVALID_RESET = 'This password reset link is invalid, expired or already used. Ask for a new one with POST /auth/password/forgot.'

export interface AdminsDeps {
  db: Database
  config: Config
  mail: Pick<MailService, 'enqueue'>
  audit: Pick<AuditService, 'record'>
  webhooks: Pick<WebhooksService, 'emit'>
  sessions: Pick<SessionsService, 'checkAttempt' | 'clearAttempts' | 'endAll' | 'forget' | 'forgetAdmin'>
  log: FastifyBaseLogger
  policy: PasswordPolicy
  secretKey: string
}

/** The webhook event of a change to an admin: its id, the audit action and the changed fields (never secrets, as in the audit log). */
export function adminEvent (action: AuditAction, id: string, changes: Record<string, unknown>): WebhookEvent {
  const type = action === 'admin.register' ? 'admin.created' : action === 'admin.delete' ? 'admin.deleted' : 'admin.updated'
  return { type, resourceId: id, data: { id, action, changes } }
}

/** What the API shows of an admin: never the hash. */
export function adminView (row: AdminRow): AdminView {
  return { id: row.id, email: row.email, name: row.name, confirmed: row.confirmed, pendingEmail: row.pendingEmail, role: row.role, mfa: row.mfa, createdAt: row.createdAt, updatedAt: row.updatedAt }
}

/** The rules every part of the service shares: password policy, email domains, the current account, currentPassword. */
function createRules (deps: AdminsDeps, repository: AdminsRepository) {
  const { config, policy, sessions } = deps
  const domainAllowed = emailDomainAllowed(config.ADMIN_EMAIL_DOMAINS)
  const domains = csv(config.ADMIN_EMAIL_DOMAINS).join(', ')
  return {
    argon2: argon2Params(config),

    checkPassword (password: string, account: PasswordContext): void {
      const problem = policy(password, account)
      if (problem !== null) throw invalidField('password', problem)
    },

    checkDomain (email: string): void {
      if (!domainAllowed(email)) throw new adminsErrors.EmailDomainNotAllowed(domains)
    },

    async current (actor: AdminActor): Promise<AdminRow> {
      const row = await repository.get(actor.id)
      /* c8 ignore next -- an admin deleted between the session check and this read (its sessions go with it) */
      if (row === null) throw new errors.Unauthorized('The session of this access token has ended')
      return row
    },

    /**
     * Verifies currentPassword for a sensitive change. Each try counts against
     * the account's login lockout, so a stolen access token cannot be used to
     * guess the password faster than a login could.
     */
    async verifyCurrentPassword (row: AdminRow, actor: Actor, given: string | undefined, what: string): Promise<void> {
      if (given === undefined) throw invalidField('currentPassword', `is required to ${what}`)
      await sessions.checkAttempt(row.email, actor.ip, async () => {
        if (!await verifyPassword(row.passwordHash, given)) throw new adminsErrors.WrongPassword()
      })
    },

    /**
     * Records an audit event about an admin, and its webhook event (admin.created,
     * admin.deleted, else admin.updated); `actor` null for an anonymous request (registration, a link).
     */
    async audit (tx: Queryable, actor: Pick<Actor, 'type' | 'id'> | null, action: AuditAction, targetId: string, requestId: string, changes: Record<string, unknown>): Promise<void> {
      await deps.audit.record(tx, { actor: actor === null ? null : { type: actor.type, id: actor.id }, action, targetType: 'admin', targetId, requestId, changes })
      await deps.webhooks.emit(tx, [adminEvent(action, targetId, changes)])
    },

    /**
     * Refuses a change that would leave no owner (409): call it in the change's
     * transaction; the owners' rows stay locked until it ends, so two owners
     * demoting each other at once cannot both succeed.
     */
    async keepAnOwner (tx: Queryable, target: { id: string, role: Role }, what: string): Promise<void> {
      if (target.role !== 'owner') return
      const owners = await repository.lockOwners(tx)
      if (owners.length === 1 && owners[0] === target.id) throw new adminsErrors.LastOwner(what)
    }
  }
}

type Rules = ReturnType<typeof createRules>

/** What a registration answers for an email that has an account: the shape of a new one, of no account at all. */
function lookalike (body: RegistrationBody, role: Role): AdminView {
  const now = new Date().toISOString()
  return { id: randomUUID(), email: body.email, name: body.name, confirmed: false, pendingEmail: null, role, mfa: false, createdAt: now, updatedAt: now }
}

/** Registration: register, confirm (the emailed link), resend the confirmation. */
function createRegistration (deps: AdminsDeps, repository: AdminsRepository, rules: Rules, sendTokenEmail: (email: string, purpose: 'confirm_account') => void) {
  const { db, config, mail, log } = deps

  /**
   * Someone registered with the address of an existing account: its owner is
   * told, with a reset link, and the attempt is audited. The statements match
   * a registration's (token, email, audit), so both take as long.
   */
  async function notifyOwner (tx: Queryable, owner: { id: string, email: string, name: string }, requestId: string): Promise<void> {
    const token = await repository.issueTokenWithin(tx, owner.id, 'reset_password', EMAILS_PER_HOUR)
    if (token !== null) await mail.enqueue(tx, { template: 'register_existing', to: owner.email, data: { name: owner.name, token } })
    else log.info({ adminId: owner.id }, 'registration with an existing address: no email sent, hourly limit for this account reached')
    await rules.audit(tx, null, 'admin.register_attempt', owner.id, requestId, {})
  }

  return {
    /**
     * Registers an unconfirmed admin and emails its confirmation link. An email
     * that already has an account is answered exactly alike (status, shape, an
     * id of no account, the same work: argon2 hash, one transaction of the same
     * statements), so registration tells no one which addresses have accounts;
     * the owner gets an email saying so instead, with a password reset link
     * (at most EMAILS_PER_HOUR a hour, shared with POST /auth/password/forgot).
     * A taken name is still a 409: names are public handles.
     */
    async register (body: RegistrationBody, requestId: string): Promise<AdminView> {
      const mode = registration(config)
      if (mode === 'closed' || mode === 'invite') throw new adminsErrors.RegistrationClosed(mode === 'invite' ? 'by invitation only (an owner sends one with POST /auth/invitations)' : 'an operator creates admin accounts (npm run create-admin)')
      rules.checkDomain(body.email)
      rules.checkPassword(body.password, { emails: [body.email], names: [body.name] })
      const passwordHash = await hashPassword(body.password, rules.argon2)
      try {
        return await transaction(db, async (tx) => {
          const outcome = await repository.register(tx, { email: body.email, name: body.name, passwordHash, role: config.REGISTRATION_ROLE })
          if ('existing' in outcome) {
            await notifyOwner(tx, outcome.existing, requestId)
            return lookalike(body, config.REGISTRATION_ROLE)
          }
          const row = outcome.created
          const token = await repository.issueToken(tx, row.id, 'confirm_account')
          await mail.enqueue(tx, { template: 'confirm_account', to: row.email, data: { name: row.name, token } })
          await rules.audit(tx, null, 'admin.register', row.id, requestId, { email: row.email, name: row.name, role: row.role })
          return adminView(row)
        })
      } catch (err) {
        // Registered by a concurrent request after this one looked: answered like any address that has an account.
        if (err instanceof adminsErrors.EmailTaken) return lookalike(body, config.REGISTRATION_ROLE)
        throw err
      }
    },

    /** Uses a confirmation link: confirms the account, or makes a pending email address the admin's. */
    async confirm (token: string, requestId: string): Promise<Confirmation> {
      return await transaction(db, async (tx) => {
        const use = await repository.consumeToken(tx, token, ['confirm_account', 'confirm_email'])
        if (use === null) throw new adminsErrors.InvalidLink(INVALID_CONFIRM)
        if (use.purpose === 'confirm_account') {
          const row = await repository.update(tx, use.adminId, { confirm: true }) as AdminRow
          const self = { type: 'admin' as const, id: use.adminId }
          await rules.audit(tx, self, 'admin.confirm', use.adminId, requestId, { confirmed: true })
          // The first admin to confirm is an owner (nobody could make them one).
          if (await repository.promoteIfFirstOwner(tx, use.adminId)) await rules.audit(tx, null, 'admin.role_change', use.adminId, requestId, { role: 'owner', reason: 'first admin' })
          return { purpose: 'account' as const, email: row.email }
        }
        const row = await repository.get(use.adminId, tx) as AdminRow
        const email = use.email as string // confirm_email tokens always carry their address
        // Only the latest requested address can be confirmed. Older links are voided whenever
        // pendingEmail changes, so this only guards against a change made some other way.
        /* c8 ignore next */
        if (row.pendingEmail !== email) throw new adminsErrors.InvalidLink(INVALID_CONFIRM)
        await repository.update(tx, row.id, { email, pendingEmail: null })
        await rules.audit(tx, { type: 'admin', id: row.id }, 'admin.email_change', row.id, requestId, { email })
        return { purpose: 'email' as const, email }
      })
    },

    /** Queues a new confirmation email when an unconfirmed account has this address; the caller has answered 202 already. */
    resendConfirmation (email: string): void {
      sendTokenEmail(email, 'confirm_account')
    }
  }
}

/** The part of updateMe inside its transaction: the row change, tokens, emails, sessions, audit. */
async function applyChanges (deps: AdminsDeps, repository: AdminsRepository, rules: Rules, tx: Queryable, actor: AdminActor, row: AdminRow, change: { newName?: string | undefined, newEmail?: string | undefined, cancelPending: boolean, passwordHash?: string | undefined }): Promise<{ row: AdminRow, ended: string[] }> {
  const { newName, newEmail, cancelPending, passwordHash } = change
  const { mail, sessions } = deps
  const audit = async (action: AuditAction, changes: Record<string, unknown>): Promise<void> => await rules.audit(tx, actor, action, row.id, actor.requestId, changes)
  const set: AdminChange = {}
  let ended: string[] = []
  if (newName !== undefined) {
    set.name = newName
    await audit('admin.update', { name: newName })
  }
  if (newEmail !== undefined || cancelPending) {
    set.pendingEmail = newEmail ?? null
    await repository.voidTokens(tx, row.id, 'confirm_email')
    await audit('admin.email_change', { pendingEmail: newEmail ?? null })
  }
  if (newEmail !== undefined) {
    const token = await repository.issueToken(tx, row.id, 'confirm_email', newEmail)
    await mail.enqueue(tx, { template: 'confirm_email', to: newEmail, data: { name: newName ?? row.name, token } })
  }
  if (passwordHash !== undefined) {
    set.passwordHash = passwordHash
    await repository.voidTokens(tx, row.id, 'reset_password')
    ended = await sessions.endAll(tx, row.id, 'password_change', actor.sessionId)
    await audit('admin.password_change', { password: '[changed]' })
  }
  if (newEmail !== undefined || passwordHash !== undefined) await sessions.clearAttempts(row.email, tx)
  if (Object.keys(set).length === 0) return { row, ended }
  return { row: await repository.update(tx, row.id, set) as AdminRow, ended }
}

/** The admin's own account: read it, change name, email or password, delete it. */
function createProfile (deps: AdminsDeps, repository: AdminsRepository, rules: Rules) {
  const { db, sessions } = deps
  return {
    async me (actor: AdminActor): Promise<AdminView> {
      return adminView(await rules.current(actor))
    },

    /**
     * Name changes at once. A new email waits for its confirmation link (sent to
     * the new address) and needs currentPassword; so does a new password, which
     * ends every other session.
     */
    async updateMe (actor: AdminActor, body: AdminChangesBody): Promise<AdminView> {
      if (body.name === undefined && body.email === undefined && body.password === undefined) throw new adminsErrors.NothingToChange()
      const row = await rules.current(actor)
      const newName = body.name !== undefined && body.name !== row.name ? body.name : undefined
      const newEmail = body.email !== undefined && normaliseEmail(body.email) !== normaliseEmail(row.email) ? body.email : undefined
      const cancelPending = body.email !== undefined && newEmail === undefined && row.pendingEmail !== null
      const newPassword = body.password
      if (newEmail !== undefined) rules.checkDomain(newEmail)
      if (newPassword !== undefined) rules.checkPassword(newPassword, { emails: [row.email, newEmail], names: [row.name, newName] })
      if (newEmail !== undefined || newPassword !== undefined) {
        requireRecentLogin(actor)
        await rules.verifyCurrentPassword(row, actor, body.currentPassword, newPassword !== undefined ? 'change the password' : 'change the email')
      }
      if (newEmail !== undefined && await repository.emailInUse(newEmail, row.id)) throw new adminsErrors.EmailTaken()
      const passwordHash = newPassword === undefined ? undefined : await hashPassword(newPassword, rules.argon2)
      const updated = await transaction(db, async (tx) => await applyChanges(deps, repository, rules, tx, actor, row, { newName, newEmail, cancelPending, passwordHash }))
      await sessions.forget(updated.ended)
      return adminView(updated.row)
    },

    /** Deletes the admin for real: its sessions and tokens go, users it created stay (createdBy becomes null). */
    async deleteMe (actor: AdminActor, currentPassword: string): Promise<void> {
      requireRecentLogin(actor)
      const row = await rules.current(actor)
      await rules.verifyCurrentPassword(row, actor, currentPassword, 'delete the account')
      const ended = await transaction(db, async (tx) => {
        await rules.keepAnOwner(tx, row, 'delete the account of')
        const ended = await sessions.endAll(tx, row.id, 'deleted')
        await rules.audit(tx, actor, 'admin.delete', row.id, actor.requestId, { email: row.email, name: row.name })
        await repository.remove(tx, row.id)
        await sessions.clearAttempts(row.email, tx)
        return ended
      })
      await sessions.forget([...ended, actor.sessionId])
    }
  }
}

/** What owners do to other admins: change their role, remove them. */
function createManagement (deps: AdminsDeps, repository: AdminsRepository, rules: Rules) {
  const { db, sessions } = deps
  const existing = async (tx: Queryable, id: string): Promise<AdminRow> => {
    const row = await repository.get(id, tx)
    if (row === null) throw new errors.NotFound(`No admin with id ${id}`)
    return row
  }
  return {
    /**
     * Changes an admin's role. The last owner cannot be demoted (409). Takes
     * effect on this instance at once and on the others within
     * SESSION_CACHE_TTL: the session check re-reads the role.
     */
    async changeRole (actor: Actor, id: string, role: Role): Promise<AdminView> {
      const row = await transaction(db, async (tx) => {
        const row = await existing(tx, id)
        if (row.role === role) return row
        if (role !== 'owner') await rules.keepAnOwner(tx, row, 'demote')
        await rules.audit(tx, actor, 'admin.role_change', id, actor.requestId, { role })
        return await repository.setRole(tx, id, role) as AdminRow
      })
      await sessions.forgetAdmin(id)
      return adminView(row)
    },

    /** Deletes another admin (or oneself) and ends their sessions; the last owner cannot be removed (409). */
    async remove (actor: Actor, id: string): Promise<void> {
      const ended = await transaction(db, async (tx) => {
        const row = await existing(tx, id)
        await rules.keepAnOwner(tx, row, 'remove')
        const ended = await sessions.endAll(tx, id, 'deleted')
        await rules.audit(tx, actor, 'admin.delete', id, actor.requestId, { email: row.email, name: row.name })
        await repository.remove(tx, id)
        await sessions.clearAttempts(row.email, tx)
        return ended
      })
      await sessions.forget(ended)
    }
  }
}

/** What invitations (src/invitations) need of accounts: the same rules as registration, the admin made in their transaction. */
function createInvited (deps: AdminsDeps, repository: AdminsRepository, rules: Rules) {
  return {
    /** An address may be invited when its domain is allowed and no admin has it yet (403, 409). */
    async invitable (email: string): Promise<void> {
      rules.checkDomain(email)
      if (await repository.emailInUse(email, '00000000-0000-0000-0000-000000000000')) throw new adminsErrors.EmailTaken()
    },

    /** Checks an invited admin's password against the policy and hashes it (before any transaction: argon2 takes a while). */
    async prepareInvited (email: string, name: string, password: string): Promise<string> {
      rules.checkPassword(password, { emails: [email], names: [name] })
      return await hashPassword(password, rules.argon2)
    },

    /** The invited admin, confirmed, with the invitation's role, in the invitation's transaction. */
    async insertInvited (tx: Queryable, values: { email: string, name: string, passwordHash: string, role: Role }, requestId: string): Promise<AdminView> {
      const row = await repository.insert(tx, { ...values, confirmed: true })
      await rules.audit(tx, null, 'admin.register', row.id, requestId, { email: row.email, name: row.name, role: row.role, confirmed: true })
      return adminView(row)
    }
  }
}

/** Password recovery: the emailed reset link, and the reset itself. */
function createRecovery (deps: AdminsDeps, repository: AdminsRepository, rules: Rules, sendTokenEmail: (email: string, purpose: 'reset_password') => void) {
  const { db, sessions } = deps
  return {
    /** Queues a password reset email when an account has this address; the caller has answered 202 already. */
    forgotPassword (email: string): void {
      sendTokenEmail(email, 'reset_password')
    },

    /**
     * Sets a new password with an emailed reset token; every session of the
     * account ends. The token is used up in the same transaction, so a refused
     * password (rolled back) leaves it usable; a reset voids the account's
     * other reset links.
     */
    async resetPassword (token: string, password: string, requestId: string): Promise<void> {
      const ended = await transaction(db, async (tx) => {
        const use = await repository.consumeToken(tx, token, ['reset_password'])
        if (use === null) throw new adminsErrors.InvalidLink(INVALID_RESET)
        const row = await repository.get(use.adminId, tx) as AdminRow
        rules.checkPassword(password, { emails: [row.email], names: [row.name] })
        await repository.update(tx, row.id, { passwordHash: await hashPassword(password, rules.argon2) })
        await repository.voidTokens(tx, row.id, 'reset_password')
        const ended = await sessions.endAll(tx, row.id, 'password_reset')
        await sessions.clearAttempts(row.email, tx)
        await rules.audit(tx, null, 'admin.password_reset', row.id, requestId, { password: '[changed]' })
        return ended
      })
      await sessions.forget(ended)
    }
  }
}

/**
 * Admin accounts: registration, confirmation, profile, password recovery and
 * the list of admins. Each change runs in one transaction with its audit event
 * and, when it needs one, its email (transactional outbox). Logins and
 * sessions are the sessions service's.
 */
export function createAdminsService (deps: AdminsDeps) {
  const { db, mail, log } = deps
  const repository = createAdminsRepository(db)
  const lister = createLister<AdminSummaryView>(ADMINS_LIST, deps.secretKey)
  const rules = createRules(deps, repository)
  const background = createBackground(log)

  /**
   * Sends one more email of a kind to the account with this address (for
   * confirm_account: only while unconfirmed), unless EMAILS_PER_HOUR went out
   * already, after the answer (tracked by `drain`). The account row is locked
   * meanwhile, so concurrent asks count right.
   */
  function sendTokenEmail (email: string, purpose: 'confirm_account' | 'reset_password'): void {
    const what = purpose === 'confirm_account' ? 'resending a confirmation email' : 'sending a password reset email'
    background.later(what, async () => {
      await transaction(db, async (tx) => {
        const row = await repository.lockByEmail(tx, normaliseEmail(email), purpose === 'confirm_account')
        if (row === null) return
        const token = await repository.issueTokenWithin(tx, row.id, purpose, EMAILS_PER_HOUR)
        if (token === null) {
          log.info({ adminId: row.id, purpose }, 'email not sent: hourly limit for this account reached')
          return
        }
        await mail.enqueue(tx, { template: purpose, to: row.email, data: { name: row.name, token } })
      })
    })
  }

  return {
    repository,
    ...createRegistration(deps, repository, rules, sendTokenEmail),
    ...createProfile(deps, repository, rules),
    ...createRecovery(deps, repository, rules, sendTokenEmail),
    ...createManagement(deps, repository, rules),
    ...createInvited(deps, repository, rules),
    rules,

    /** GET /auth/admins: a page of admins. */
    lister,
    list: async (query: PageQuery): Promise<Page<AdminSummaryView>> => await lister.page(db, query),

    /** Resolves once the work left running after answers (resend, forgot) is done. */
    drain: background.drain
  }
}

export type AdminsService = ReturnType<typeof createAdminsService>
