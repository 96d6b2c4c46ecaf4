import createError from '@fastify/error'

/** Errors of the users resource; the single error handler (src/infra/problem.ts) answers them as problem+json. */
export const usersErrors = {
  EmailTaken: createError('ROSTER_USER_EMAIL_TAKEN', 'email: another user already has this email address', 409)
}
