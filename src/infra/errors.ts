import createError from '@fastify/error'

/**
 * Generic errors, made once and thrown anywhere; the single error handler
 * (src/infra/problem.ts) turns them into application/problem+json. The code is the problem's
 * `code`; the message (with %s filled in) its `detail`.
 */
export const errors = {
  NotFound: createError('ROSTER_NOT_FOUND', '%s', 404),
  RouteNotFound: createError('ROSTER_ROUTE_NOT_FOUND', 'No route %s %s', 404),
  MethodNotAllowed: createError('ROSTER_METHOD_NOT_ALLOWED', 'Method %s is not allowed on %s', 405),
  Unauthorized: createError('ROSTER_UNAUTHORIZED', '%s', 401),
  Forbidden: createError('ROSTER_FORBIDDEN', '%s', 403),
  /** Step-up (src/infra/actor.ts): the change needs a recent login. */
  ReauthenticationRequired: createError('ROSTER_REAUTHENTICATION_REQUIRED', '%s', 401),
  /** MFA_REQUIRED=true and the admin has not enrolled yet. */
  MfaEnrolmentRequired: createError('ROSTER_MFA_ENROLMENT_REQUIRED', 'Two-factor login is required here: enrol with POST /auth/mfa/totp and POST /auth/mfa/totp/verify first', 403),
  Conflict: createError('ROSTER_CONFLICT', '%s', 409),
  BadRequest: createError('ROSTER_BAD_REQUEST', '%s', 400),
  UnsupportedMediaType: createError('ROSTER_UNSUPPORTED_MEDIA_TYPE', '%s', 415),
  NotAcceptable: createError('ROSTER_NOT_ACCEPTABLE', '%s', 406),
  /** A body past a route's own limit, found while streaming it (an import). */
  BodyTooLarge: createError('ROSTER_BODY_TOO_LARGE', '%s', 413),
  PreconditionFailed: createError('ROSTER_PRECONDITION_FAILED', '%s', 412),
  PreconditionRequired: createError('ROSTER_PRECONDITION_REQUIRED', '%s', 428),
  Unprocessable: createError('ROSTER_UNPROCESSABLE', '%s', 422),
  TooManyRequests: createError('ROSTER_TOO_MANY_REQUESTS', '%s', 429),
  ServiceUnavailable: createError('ROSTER_SERVICE_UNAVAILABLE', '%s', 503),
  InvalidCursor: createError('ROSTER_INVALID_CURSOR', '%s', 400),
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

const Invalid = createError('ROSTER_VALIDATION_FAILED', 'The request is not valid; see errors.', 400)

/**
 * A 400 shaped exactly like a schema validation failure (`errors: [{path, message}]`),
 * for rules a JSON schema cannot express: password policy, a required currentPassword.
 */
export function invalidField (field: string, message: string, context: 'body' | 'querystring' = 'body'): Error {
  // `field` is a JSON pointer below the part, without its leading slash: `password`, `items/0/name`.
  return Object.assign(new Invalid(), {
    validation: [{ instancePath: `/${field}`, keyword: 'policy', params: {}, message, schemaPath: '#' }],
    validationContext: context
  })
}

/** The message of an `invalidField` error (e.g. the password policy's reason), or undefined for any other error. */
export function invalidFieldMessage (err: unknown): string | undefined {
  return err instanceof Invalid ? (err as unknown as { validation: [{ message: string }] }).validation[0].message : undefined
}

/**
 * The one way to ask for a Retry-After header: the error carries the seconds,
 * the single error handler (src/infra/problem.ts) answers them (lockout and
 * rate-limit 429s, overload 503s; any other 503 says 5).
 */
export function withRetryAfter<E extends Error> (err: E, seconds: number): E & { retryAfter: number } {
  return Object.assign(err, { retryAfter: seconds })
}

/**
 * Why a request was refused, for its log line only (the answer's detail stays
 * generic): the single error handler writes it as `reason`. E.g. the kid or
 * issuer of an access token that does not verify here.
 */
export function withLogReason<E extends Error> (err: E, reason: string): E & { logReason: string } {
  return Object.assign(err, { logReason: reason })
}
