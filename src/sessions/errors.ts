import createError from '@fastify/error'
import { withRetryAfter } from '../infra/errors.ts'

/** Errors of logins and sessions; the single error handler (src/infra/problem.ts) answers them as problem+json. */
export const sessionsErrors = {
  /** Unknown email and wrong password alike: the same status, code and detail. */
  InvalidCredentials: createError('ROSTER_INVALID_CREDENTIALS', 'The email or the password is wrong', 401),
  /** Told only after the password verified. */
  NotConfirmed: createError('ROSTER_ACCOUNT_NOT_CONFIRMED', 'This account is not confirmed yet: open the link in the confirmation email, or ask for a new one with POST /auth/confirm/resend', 403),
  LoginLocked: createError('ROSTER_LOGIN_LOCKED', 'Too many failed logins for this email: try again in %s seconds', 429),
  InvalidRefreshToken: createError('ROSTER_INVALID_REFRESH_TOKEN', 'The refresh token is invalid, expired or already used', 401),
  InvalidMfaToken: createError('ROSTER_INVALID_MFA_TOKEN', 'The mfa_token is invalid, expired or already used: log in again with POST /auth/login', 401),
  WrongPassword: createError('ROSTER_WRONG_PASSWORD', 'The password is wrong', 401),
  InvalidMfaCode: createError('ROSTER_INVALID_MFA_CODE', 'The code is wrong, or was already used', 401)
}

/** A lockout error, with the seconds to wait (answered as Retry-After). */
export function locked (seconds: number): Error {
  return withRetryAfter(new sessionsErrors.LoginLocked(String(seconds)), seconds)
}
