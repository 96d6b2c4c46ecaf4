import { Type } from '@sinclair/typebox'
import { Problem, statusTitle } from './problem.ts'
import { EMAIL_MAX, NAME_PATTERN, PASSWORD_MAX, PASSWORD_MIN } from '../src/auth/policy.ts'

/** Shared pieces of the /auth routes' schemas. */

/** A timestamp: a Date in handlers, an RFC 3339 string on the wire. */
export const DateTime = (description?: string) => Type.Unsafe<Date>({ type: 'string', format: 'date-time', ...(description === undefined ? {} : { description }) })

export const Email = Type.String({ format: 'email', maxLength: EMAIL_MAX, description: 'Email address (unique case-insensitively).', examples: ['ann@example.com'] })
export const Name = Type.String({ pattern: NAME_PATTERN, minLength: 3, maxLength: 32, description: '3–32 ASCII letters, digits, `.`, `_` or `-` (unique case-insensitively).', examples: ['ann'] })
export const NewPassword = Type.String({ minLength: PASSWORD_MIN, maxLength: PASSWORD_MAX, description: `${PASSWORD_MIN}–${PASSWORD_MAX} characters, any characters; not a common password, not the email or name.` })
/** A password to check (login, currentPassword): no policy, only bounded. */
export const GivenPassword = Type.String({ minLength: 1, maxLength: PASSWORD_MAX, description: 'The account\'s password.' })
/** Opaque single-use tokens (refresh, emailed links): 43 base64url characters when genuine. */
export const OpaqueToken = Type.String({ minLength: 1, maxLength: 256 })

export const Admin = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String({ description: 'The address in force (a new one waits in pendingEmail until confirmed).' }),
  name: Type.String(),
  confirmed: Type.Boolean({ description: 'Whether the account\'s email was confirmed.' }),
  pendingEmail: Type.Union([Type.String(), Type.Null()], { description: 'A new address waiting for its confirmation link, or null.' }),
  createdAt: DateTime(),
  updatedAt: DateTime()
}, { additionalProperties: false, description: 'An admin account (never its password hash).' })

export const TokenPair = Type.Object({
  access_token: Type.String({ description: 'EdDSA-signed JWT (typ at+jwt); send as Authorization: Bearer.' }),
  refresh_token: Type.String({ description: 'Opaque, single use: POST /auth/refresh exchanges it for a new pair.' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires.' })
}, { additionalProperties: false })

export const Session = Type.Object({
  id: Type.String({ format: 'uuid' }),
  current: Type.Boolean({ description: 'The session of the access token making this request.' }),
  createdAt: DateTime('When the login happened.'),
  lastUsedAt: DateTime('Last login or refresh.'),
  idleExpiresAt: DateTime('Ends unless refreshed before.'),
  expiresAt: DateTime('Ends at the latest.'),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()])
}, { additionalProperties: false })

export const Accepted = Type.Object({
  status: Type.Literal('accepted'),
  detail: Type.String()
}, { additionalProperties: false })

export const Confirmed = Type.Object({
  status: Type.Literal('confirmed'),
  purpose: Type.Union([Type.Literal('account'), Type.Literal('email')], { description: 'account: the account is confirmed; email: the new address is now the account\'s.' }),
  email: Type.String()
}, { additionalProperties: false })

/** An HTML page (the emailed links open these in a browser). */
export const Html = Type.String({ description: 'An HTML page.' })

/** An error answered as problem+json to API clients and as an HTML page to browsers. */
export function problemOrHtml (...statuses: number[]): Record<number, unknown> {
  const out: Record<number, unknown> = {}
  for (const status of statuses) {
    out[status] = { description: statusTitle(status), content: { 'application/problem+json': { schema: Type.Ref(Problem) }, 'text/html': { schema: Html } } }
  }
  return out
}

/** Marks a route as needing the access token in the OpenAPI document (Swagger UI's "Authorize"). */
export const bearer = [{ bearerAuth: [] }]

export const Jwks = Type.Object({
  keys: Type.Array(Type.Object({
    kty: Type.Literal('OKP'),
    crv: Type.Literal('Ed25519'),
    x: Type.String(),
    kid: Type.String(),
    alg: Type.Literal('EdDSA'),
    use: Type.Literal('sig')
  }, { additionalProperties: false }))
}, { additionalProperties: false, description: 'JSON Web Key Set (RFC 7517): every key that verifies access tokens.' })
