import createError from '@fastify/error'

/**
 * Domain errors, made once and thrown anywhere; the single error handler in
 * app.ts turns them into application/problem+json. The code is the problem's
 * `code`; the message (with %s filled in) its `detail`.
 */
export const errors = {
  NotFound: createError('ROSTER_NOT_FOUND', '%s', 404),
  RouteNotFound: createError('ROSTER_ROUTE_NOT_FOUND', 'No route %s %s', 404),
  MethodNotAllowed: createError('ROSTER_METHOD_NOT_ALLOWED', 'Method %s is not allowed on %s', 405),
  Unauthorized: createError('ROSTER_UNAUTHORIZED', '%s', 401),
  Forbidden: createError('ROSTER_FORBIDDEN', '%s', 403),
  Conflict: createError('ROSTER_CONFLICT', '%s', 409),
  BadRequest: createError('ROSTER_BAD_REQUEST', '%s', 400),
  PreconditionFailed: createError('ROSTER_PRECONDITION_FAILED', '%s', 412),
  PreconditionRequired: createError('ROSTER_PRECONDITION_REQUIRED', '%s', 428),
  Unprocessable: createError('ROSTER_UNPROCESSABLE', '%s', 422),
  TooManyRequests: createError('ROSTER_TOO_MANY_REQUESTS', '%s', 429),
  ServiceUnavailable: createError('ROSTER_SERVICE_UNAVAILABLE', '%s', 503),
  InvalidCursor: createError('ROSTER_INVALID_CURSOR', '%s', 400),
  UserEmailTaken: createError('ROSTER_USER_EMAIL_TAKEN', 'email: another user already has this email address', 409),
  IdempotencyKeyReused: createError('ROSTER_IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with another request; use a new key for a new request', 422),
  /** Load shedding by @fastify/under-pressure (plugins/pressure.ts). */
  Overloaded: createError('ROSTER_OVERLOADED', 'The service is overloaded; retry after the time in Retry-After.', 503)
}

/** Fastify's own error codes, mapped to Roster's. */
export const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_VALIDATION: 'ROSTER_VALIDATION_FAILED',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'ROSTER_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'ROSTER_BODY_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'ROSTER_INVALID_BODY',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'ROSTER_INVALID_BODY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'ROSTER_INVALID_BODY',
  FST_ERR_CTP_EMPTY_TYPE: 'ROSTER_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'ROSTER_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_BAD_URL: 'ROSTER_BAD_URL',
  FST_ERR_MAX_PARAM_LENGTH: 'ROSTER_URI_TOO_LONG',
  FST_ERR_ASYNC_CONSTRAINT: 'ROSTER_BAD_REQUEST',
  FST_ERR_RATE_LIMIT: 'ROSTER_RATE_LIMITED',
  FST_JWT_NO_AUTHORIZATION_IN_HEADER: 'ROSTER_UNAUTHORIZED',
  FST_JWT_AUTHORIZATION_TOKEN_INVALID: 'ROSTER_UNAUTHORIZED',
  FST_JWT_AUTHORIZATION_TOKEN_EXPIRED: 'ROSTER_UNAUTHORIZED',
  FST_JWT_AUTHORIZATION_TOKEN_UNTRUSTED: 'ROSTER_UNAUTHORIZED',
  FST_JWT_BAD_REQUEST: 'ROSTER_UNAUTHORIZED'
}

/** What node-postgres raises when the database cannot be reached, is restarting, or the pool is exhausted. */
const UNAVAILABLE_CODES = new Set([
  '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006', '57014',
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'
])
// `Query read timeout`: node-postgres gave up waiting for an answer (query_timeout), e.g. the server vanished mid-query.
const UNAVAILABLE_MESSAGE = /timeout exceeded when trying to connect|Connection terminated|Client has encountered a connection error|Cannot use a pool after calling end|Query read timeout/i

export function isDatabaseUnavailable (err: { code?: string, message: string, cause?: unknown }): boolean {
  if (UNAVAILABLE_CODES.has(err.code ?? '')) return true
  if (UNAVAILABLE_MESSAGE.test(err.message)) return true
  return err.cause instanceof Error && isDatabaseUnavailable(err.cause)
}
