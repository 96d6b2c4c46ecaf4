import type { AdminView } from '../../schemas/admins.ts'
import type { InvitationAcceptanceBody, InvitationView, NewInvitationBody } from '../../schemas/invitations.ts'
import { INVITATIONS_LISTED } from '../../schemas/invitations.ts'
import type { AdminsService } from '../admins/service.ts'
import type { AuditService } from '../audit/service.ts'
import type { Config } from '../config.ts'
import type { MailService } from '../mail/service.ts'
import type { Actor } from '../infra/actor.ts'
import { transaction, type Database } from '../infra/database.ts'
import { errors } from '../infra/errors.ts'
import { invitationsErrors } from './errors.ts'
import { createInvitationsRepository } from './repository.ts'

export interface InvitationsDeps {
  db: Database
  config: Config
  mail: Pick<MailService, 'enqueue'>
  audit: Pick<AuditService, 'record'>
  admins: Pick<AdminsService, 'invitable' | 'prepareInvited' | 'insertInvited'>
}

const INVALID = 'This invitation link is invalid, expired, revoked or already used: ask an owner for a new one.'

/**
 * Invitations: an owner invites an email address with a role; the emailed
 * link (single use, 72 h, its token stored as SHA-256 only) lets its holder
 * choose a name and a password and become a confirmed admin with that role.
 * With REGISTRATION=invite this is the only way in; REGISTRATION=closed turns
 * invitations off too.
 */
export function createInvitationsService ({ db, config, mail, audit, admins }: InvitationsDeps) {
  const repository = createInvitationsRepository(db)
  const open = (): void => {
    if (config.REGISTRATION === 'closed') throw new invitationsErrors.Closed()
  }

  return {
    repository,

    async invite (actor: Actor, body: NewInvitationBody): Promise<InvitationView> {
      open()
      await admins.invitable(body.email)
      return await transaction(db, async (tx) => {
        const { invitation, token } = await repository.insert(tx, { email: body.email, role: body.role, invitedBy: actor.id })
        await mail.enqueue(tx, { template: 'invitation', to: invitation.email, data: { name: '', token } })
        await audit.record(tx, { actor: { type: actor.type, id: actor.id }, action: 'invitation.create', targetType: 'invitation', targetId: invitation.id, requestId: actor.requestId, changes: { email: invitation.email, role: invitation.role } })
        return invitation
      })
    },

    list: async (): Promise<InvitationView[]> => await repository.list(INVITATIONS_LISTED),

    async revoke (actor: Actor, id: string): Promise<void> {
      await transaction(db, async (tx) => {
        const email = await repository.revoke(tx, id)
        if (email === null) throw new errors.NotFound(`No pending invitation with id ${id}`)
        await audit.record(tx, { actor: { type: actor.type, id: actor.id }, action: 'invitation.revoke', targetType: 'invitation', targetId: id, requestId: actor.requestId, changes: { email } })
      })
    },

    /**
     * Accepts an invitation: a confirmed admin with its role, in one
     * transaction with the invitation used up. A refused name or password
     * (400, 409) leaves the link usable.
     */
    async accept (body: InvitationAcceptanceBody, requestId: string): Promise<AdminView> {
      open()
      const pending = await repository.peek(body.token)
      if (pending === null) throw new invitationsErrors.InvalidInvitation(INVALID)
      const passwordHash = await admins.prepareInvited(pending.email, body.name, body.password)
      return await transaction(db, async (tx) => {
        const invitation = await repository.accept(tx, body.token)
        /* c8 ignore next -- used or revoked between the two statements above */
        if (invitation === null) throw new invitationsErrors.InvalidInvitation(INVALID)
        const admin = await admins.insertInvited(tx, { email: invitation.email, name: body.name, passwordHash, role: invitation.role }, requestId)
        await audit.record(tx, { actor: null, action: 'invitation.accept', targetType: 'invitation', targetId: invitation.id, requestId, changes: { adminId: admin.id } })
        return admin
      })
    }
  }
}

export type InvitationsService = ReturnType<typeof createInvitationsService>
