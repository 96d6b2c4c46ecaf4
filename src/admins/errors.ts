import createError, { type FastifyError } from '@fastify/error'

/**
 * Errors of admin accounts, made once and thrown; the single error handler
 * (src/infra/problem.ts) turns them into problem+json.
 */
export const adminsErrors = {
  WrongPassword: createError('ROSTER_WRONG_PASSWORD', 'currentPassword is wrong', 401),
  InvalidLink: createError('ROSTER_INVALID_TOKEN', '%s', 400),
  EmailTaken: createError('ROSTER_EMAIL_TAKEN', 'email: an admin with this email address already exists', 409),
  NameTaken: createError('ROSTER_NAME_TAKEN', 'name: an admin with this name already exists', 409),
  RegistrationClosed: createError('ROSTER_REGISTRATION_CLOSED', 'Registration is closed: %s', 403),
  LastOwner: createError('ROSTER_LAST_OWNER', 'Cannot %s the last owner: make another admin an owner first', 409),
  EmailDomainNotAllowed: createError('ROSTER_EMAIL_DOMAIN_NOT_ALLOWED', 'email: admin accounts are limited to addresses at %s', 403),
  NothingToChange: createError('ROSTER_NOTHING_TO_CHANGE', 'Give at least one of name, email or password to change', 400)
}

/**
 * Errors an emailed link's page shows as an HTML error page rather than
 * problem+json when a browser opened it (GET /auth/confirm, POST /auth/password/reset).
 */
export function isLinkError (err: unknown): err is FastifyError {
  return err instanceof adminsErrors.InvalidLink || err instanceof adminsErrors.EmailTaken || err instanceof adminsErrors.NameTaken || (err as FastifyError).code === 'ROSTER_INVALID_TOKEN' || (err as FastifyError).code === 'ROSTER_INVITATIONS_CLOSED'
}
