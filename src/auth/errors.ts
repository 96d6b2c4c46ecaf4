import createError from '@fastify/error'

/**
 * Errors of admin accounts, made once and thrown; the single error handler
 * (src/app.ts) turns them into problem+json. Kept apart from src/errors.ts so
 * that the account codes live beside the code that raises them.
 */
export const authErrors = {
  /** Unknown email and wrong password alike: the same status, code and detail. */
  InvalidCredentials: createError('ROSTER_INVALID_CREDENTIALS', 'The email or the password is wrong', 401),
  /** Told only after the password verified. */
  NotConfirmed: createError('ROSTER_ACCOUNT_NOT_CONFIRMED', 'This account is not confirmed yet: open the link in the confirmation email, or ask for a new one with POST /auth/confirm/resend', 403),
  LoginLocked: createError('ROSTER_LOGIN_LOCKED', 'Too many failed logins for this email: try again in %s seconds', 429),
  WrongPassword: createError('ROSTER_WRONG_PASSWORD', 'currentPassword is wrong', 401),
  InvalidRefreshToken: createError('ROSTER_INVALID_REFRESH_TOKEN', 'The refresh token is invalid, expired or already used', 401),
  InvalidLink: createError('ROSTER_INVALID_TOKEN', '%s', 400),
  EmailTaken: createError('ROSTER_EMAIL_TAKEN', 'email: an admin with this email address already exists', 409),
  NameTaken: createError('ROSTER_NAME_TAKEN', 'name: an admin with this name already exists', 409),
  RegistrationClosed: createError('ROSTER_REGISTRATION_CLOSED', 'Registration is closed: an operator creates admin accounts (npm run create-admin)', 403),
  EmailDomainNotAllowed: createError('ROSTER_EMAIL_DOMAIN_NOT_ALLOWED', 'email: admin accounts are limited to addresses at %s', 403),
  NothingToChange: createError('ROSTER_NOTHING_TO_CHANGE', 'Give at least one of name, email or password to change', 400)
}

const Invalid = createError('ROSTER_VALIDATION_FAILED', 'The request is not valid; see errors.', 400)

/**
 * A 400 shaped exactly like a schema validation failure (`errors: [{path, message}]`),
 * for rules a JSON schema cannot express: password policy, a required currentPassword.
 */
export function invalidField (field: string, message: string, context: 'body' | 'querystring' = 'body'): Error {
  return Object.assign(new Invalid(), {
    validation: [{ instancePath: `/${field}`, keyword: 'policy', params: {}, message, schemaPath: '#' }],
    validationContext: context
  })
}
