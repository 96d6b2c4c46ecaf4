import createError from '@fastify/error'

/** An RFC 6749 §5.2 error of the token endpoint: answered as `{error, error_description}`, not problem+json. */
export type OAuthErrorCode = 'invalid_request' | 'invalid_client' | 'unsupported_grant_type' | 'invalid_scope'

export class OAuthError extends Error {
  readonly error: OAuthErrorCode
  constructor (code: OAuthErrorCode, readonly description: string) {
    super(description)
    this.name = 'OAuthError'
    this.error = code
  }

  /** invalid_client is 401 (with WWW-Authenticate), the rest 400 (§5.2). */
  get statusCode (): number {
    return this.error === 'invalid_client' ? 401 : 400
  }
}

export const clientsErrors = {
  TooManySecrets: createError('ROSTER_TOO_MANY_SECRETS', 'This client has %s active secrets already: delete one before adding another', 409)
}
