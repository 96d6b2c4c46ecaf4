import createError from '@fastify/error'

export const invitationsErrors = {
  Closed: createError('ROSTER_INVITATIONS_CLOSED', 'Invitations are off (REGISTRATION=closed): an operator creates admin accounts (npm run create-admin)', 403),
  InvalidInvitation: createError('ROSTER_INVALID_TOKEN', '%s', 400)
}
