import { Type, type Static } from '@sinclair/typebox'
import { Email, Name, NewPassword, OpaqueToken, RoleName } from './admins.ts'
import { Timestamp, Uuid, nullable } from './common.ts'

/** Invitations: an owner invites an email address to become an admin with a role. */

/** Pending invitations listed by GET /auth/invitations at most. */
export const INVITATIONS_LISTED = 200

export const NewInvitation = Type.Object({ email: Email, role: RoleName }, { additionalProperties: false })
export type NewInvitationBody = Static<typeof NewInvitation>

export const Invitation = Type.Object({
  id: Uuid,
  email: Type.String(),
  role: RoleName,
  invitedBy: nullable<string>({ type: 'string', format: 'uuid', description: 'The owner who invited; null once that admin is deleted.' }),
  createdAt: Timestamp(),
  expiresAt: Timestamp('The link stops working then (72 h after it was sent).')
}, { additionalProperties: false })
export type InvitationView = Static<typeof Invitation>

export const InvitationAcceptance = Type.Object({ token: OpaqueToken, name: Name, password: NewPassword }, { additionalProperties: false })
export type InvitationAcceptanceBody = Static<typeof InvitationAcceptance>

export const InvitationId = Type.Object({ id: Uuid }, { additionalProperties: false })
