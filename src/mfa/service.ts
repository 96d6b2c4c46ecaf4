import type { SecondFactorBody } from '../../schemas/mfa.ts'
import type { AuditService } from '../audit/service.ts'
import type { WebhooksService } from '../webhooks/service.ts'
import type { SessionsService } from '../sessions/service.ts'
import { requireRecentLogin, type AdminActor } from '../infra/actor.ts'
import { transaction, type Database } from '../infra/database.ts'
import { invalidField } from '../infra/errors.ts'
import type { SecretBox } from '../infra/secret-box.ts'
import { base32, matchingStep, newRecoveryCodes, newTotpSecret, otpauthUri, recoveryCodeHash, TOTP } from '../infra/totp.ts'
import { mfaErrors } from './errors.ts'
import { createMfaRepository } from './repository.ts'

export interface MfaDeps {
  db: Database
  audit: Pick<AuditService, 'record'>
  webhooks: Pick<WebhooksService, 'emit'>
  sessions: Pick<SessionsService, 'checkAttempt' | 'clearAttempts' | 'forgetAdmin'>
  /** Seals TOTP secrets at rest (src/infra/secret-box.ts). */
  box: SecretBox
  /** The issuer shown by authenticator apps. */
  issuer: string
}

/**
 * Two-factor login with TOTP (RFC 6238): enrolment (a secret, not active until
 * a code confirms it), activation with ten recovery codes, disabling. The
 * login's second step is the sessions service's (completeMfa).
 */
export function createMfaService ({ db, audit, webhooks, sessions, box, issuer }: MfaDeps) {
  const repository = createMfaRepository(db)
  const state = async (actor: AdminActor) => {
    const row = await repository.read(actor.id)
    /* c8 ignore next -- an admin deleted between the session check and this read (its sessions go with it) */
    if (row === null) throw new mfaErrors.NotEnabled()
    return row
  }

  return {
    repository,

    /** Starts (or restarts) an enrolment: a new secret, shown once, not active until verified. */
    async start (actor: AdminActor): Promise<{ secret: string, otpauth_uri: string, algorithm: 'SHA1', digits: 6, period: 30 }> {
      const row = await state(actor)
      if (row.enabled) throw new mfaErrors.AlreadyEnabled()
      const secret = newTotpSecret()
      /* c8 ignore next -- activated by a concurrent request since the read above */
      if (!await repository.start(actor.id, box.seal(secret, actor.id))) throw new mfaErrors.AlreadyEnabled()
      return { secret: base32(secret), otpauth_uri: otpauthUri(secret, issuer, row.email), algorithm: TOTP.algorithm, digits: TOTP.digits, period: TOTP.period }
    },

    /** Activates TOTP with a first code; answers the ten recovery codes, shown this once. */
    async verify (actor: AdminActor, code: string): Promise<{ recovery_codes: string[] }> {
      const row = await state(actor)
      if (row.enabled) throw new mfaErrors.AlreadyEnabled()
      if (row.secret === null) throw new mfaErrors.NotStarted()
      const step = matchingStep(box.open(row.secret, actor.id), code, null)
      if (step === null) throw invalidField('code', 'does not match the secret: check the clock of your device and the secret you entered')
      const codes = newRecoveryCodes()
      await transaction(db, async (tx) => {
        /* c8 ignore next -- activated, or restarted with another secret, by a concurrent request since the read above */
        if (!await repository.activate(tx, actor.id, step, row.secret as string)) throw new mfaErrors.AlreadyEnabled()
        await repository.replaceRecoveryCodes(tx, actor.id, codes.map(recoveryCodeHash))
        await audit.record(tx, { actor: { type: 'admin', id: actor.id }, action: 'admin.mfa_enable', targetType: 'admin', targetId: actor.id, requestId: actor.requestId, changes: { mfa: 'totp' } })
        await webhooks.emit(tx, [{ type: 'admin.updated', resourceId: actor.id, data: { id: actor.id, action: 'admin.mfa_enable', changes: { mfa: 'totp' } } }])
      })
      await sessions.forgetAdmin(actor.id)
      return { recovery_codes: codes }
    },

    /**
     * Disables TOTP: needs a recent login (step-up) and a current code or a
     * recovery code; a wrong one counts towards the login lockout.
     */
    async disable (actor: AdminActor, factor: SecondFactorBody): Promise<void> {
      if ((factor.code === undefined) === (factor.recovery_code === undefined)) throw invalidField('code', 'give exactly one of code or recovery_code')
      requireRecentLogin(actor)
      const row = await state(actor)
      if (!row.enabled || row.secret === null) throw new mfaErrors.NotEnabled()
      const secret = row.secret
      await sessions.checkAttempt(row.email, actor.ip, async () => {
        const step = factor.code === undefined ? null : matchingStep(box.open(secret, actor.id), factor.code, row.lastStep)
        await transaction(db, async (tx) => {
          const used = factor.code === undefined
            ? await repository.useRecoveryCode(tx, actor.id, recoveryCodeHash(factor.recovery_code as string))
            : step !== null && await repository.useStep(tx, actor.id, step)
          if (!used) throw new mfaErrors.WrongCode()
          await repository.disable(tx, actor.id)
          await sessions.clearAttempts(row.email, tx)
          await audit.record(tx, { actor: { type: 'admin', id: actor.id }, action: 'admin.mfa_disable', targetType: 'admin', targetId: actor.id, requestId: actor.requestId, changes: { mfa: null } })
          await webhooks.emit(tx, [{ type: 'admin.updated', resourceId: actor.id, data: { id: actor.id, action: 'admin.mfa_disable', changes: { mfa: null } } }])
        })
      })
      await sessions.forgetAdmin(actor.id)
    }
  }
}

export type MfaService = ReturnType<typeof createMfaService>
