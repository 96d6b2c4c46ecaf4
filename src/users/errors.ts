import createError from '@fastify/error'

/** Errors of the users resource; the single error handler (src/infra/problem.ts) answers them as problem+json. */
export const usersErrors = {
  EmailTaken: createError('ROSTER_USER_EMAIL_TAKEN', 'email: another user already has this email address', 409),
  /** SCIM userName (the email, unless a SCIM client gave another): unique among userNames and emails. */
  UserNameTaken: createError('ROSTER_USER_NAME_TAKEN', 'userName: another user already has this userName (or email)', 409),
  ExternalIdTaken: createError('ROSTER_USER_EXTERNAL_ID_TAKEN', 'externalId: another user already has this externalId', 409)
}
