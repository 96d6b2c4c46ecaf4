import { Type, type Static } from '@sinclair/typebox'
import { Email, GivenPassword, OpaqueToken } from './admins.ts'
import { Timestamp, Uuid } from './common.ts'

/** Sessions: login, refresh, the session list, and the keys that verify access tokens. */

/** Sessions listed by GET /auth/sessions at most. */
export const SESSIONS_LISTED = 100

export const Login = Type.Object({ email: Email, password: GivenPassword }, { additionalProperties: false })
export type LoginBody = Static<typeof Login>

export const Refresh = Type.Object({ refresh_token: OpaqueToken }, { additionalProperties: false })

export const TokenPair = Type.Object({
  access_token: Type.String({ description: 'EdDSA-signed JWT (typ at+jwt); send as Authorization: Bearer.' }),
  refresh_token: Type.String({ description: 'Opaque, single use: POST /auth/refresh exchanges it for a new pair.' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires.' })
}, { additionalProperties: false })
export type TokenPairView = Static<typeof TokenPair>

export const Session = Type.Object({
  id: Uuid,
  current: Type.Boolean({ description: 'The session of the access token making this request.' }),
  createdAt: Timestamp('When the login happened.'),
  lastUsedAt: Timestamp('Last login or refresh.'),
  idleExpiresAt: Timestamp('Ends unless refreshed before.'),
  expiresAt: Timestamp('Ends at the latest.'),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()])
}, { additionalProperties: false })
export type SessionView = Static<typeof Session>

/** What a login answers instead of tokens when the account has two-factor login. */
export const MfaChallenge = Type.Object({
  mfa_required: Type.Literal(true),
  mfa_token: Type.String({ description: 'Single purpose, single use, valid 5 minutes: send it with a code to POST /auth/login/mfa. Never accepted as a bearer token.' }),
  expires_in: Type.Integer({ description: 'Seconds until the mfa_token expires.' })
}, { additionalProperties: false })
export type MfaChallengeView = Static<typeof MfaChallenge>

/** A TOTP code: 6 digits. */
export const TotpCode = Type.String({ pattern: '^[0-9]{6}$', description: 'The 6-digit code of your authenticator app.' })
/** A recovery code as shown at enrolment (16 base32 characters in groups of 4); case, spaces and dashes do not matter. */
export const RecoveryCode = Type.String({ pattern: '^[A-Za-z2-7 -]{16,40}$', description: 'One of your single-use recovery codes.' })

export const MfaLogin = Type.Object({
  mfa_token: Type.String({ minLength: 1, maxLength: 2048 }),
  code: Type.Optional(TotpCode),
  recovery_code: Type.Optional(RecoveryCode)
}, { additionalProperties: false, description: 'The mfa_token and exactly one of code or recovery_code.' })
export type MfaLoginBody = Static<typeof MfaLogin>

export const Reauthentication = Type.Object({
  password: Type.Optional(GivenPassword),
  code: Type.Optional(TotpCode)
}, { additionalProperties: false, description: 'Your password (without two-factor login) or a current code of your authenticator app (with it).' })

export const AccessToken = Type.Object({
  access_token: Type.String({ description: 'A new access token of the same session, with auth_time now.' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer()
}, { additionalProperties: false })

export const SessionId = Type.Object({ id: Uuid })

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
