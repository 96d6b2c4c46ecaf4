import createError from '@fastify/error'

/** Errors of two-factor enrolment; the single error handler answers them as problem+json. */
export const mfaErrors = {
  AlreadyEnabled: createError('ROSTER_MFA_ALREADY_ENABLED', 'Two-factor login is already active: disable it first (DELETE /auth/mfa/totp)', 409),
  NotStarted: createError('ROSTER_MFA_NOT_STARTED', 'No TOTP enrolment is under way: start one with POST /auth/mfa/totp', 409),
  NotEnabled: createError('ROSTER_MFA_NOT_ENABLED', 'Two-factor login is not active on this account', 409),
  WrongCode: createError('ROSTER_WRONG_MFA_CODE', 'The code is wrong, or was already used', 401)
}
