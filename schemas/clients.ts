import { Type, type Static } from '@sinclair/typebox'
import { SCOPES } from './admins.ts'
import { Timestamp, Uuid, nullable } from './common.ts'

/** API clients (OAuth 2.0 client credentials, RFC 6749 §4.4) and their token endpoint. */

/** Clients listed by GET /auth/clients at most. */
export const CLIENTS_LISTED = 200
/** Active secrets a client may hold at once (the old and the new one during a rotation). */
export const SECRETS_PER_CLIENT = 2

export const ScopeName = Type.Unsafe<typeof SCOPES[number]>({ type: 'string', enum: [...SCOPES] })

export const ClientSecretInfo = Type.Object({
  id: Uuid,
  createdAt: Timestamp(),
  lastUsedAt: nullable<string>({ type: 'string', format: 'date-time', description: 'When it last got a token; null if never.' })
}, { additionalProperties: false, description: 'A secret of the client (never the secret itself).' })

export const Client = Type.Object({
  id: Uuid,
  client_id: Type.String({ description: 'What the client authenticates as (the same as id).' }),
  name: Type.String(),
  scopes: Type.Array(ScopeName),
  createdBy: nullable<string>({ type: 'string', format: 'uuid', description: 'The owner who created it; null once that admin is deleted.' }),
  createdAt: Timestamp(),
  secrets: Type.Array(ClientSecretInfo)
}, { additionalProperties: false })
export type ClientView = Static<typeof Client>

export const NewClient = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f\\u007f]*$', description: 'What the client is, for people: e.g. "HR sync".' }),
  scopes: Type.Array(ScopeName, { minItems: 1, maxItems: SCOPES.length, uniqueItems: true, description: 'What its tokens may do.' })
}, { additionalProperties: false })
export type NewClientBody = Static<typeof NewClient>

export const CreatedClient = Type.Object({
  ...Client.properties,
  client_secret: Type.String({ description: 'Shown once, never again: store it now. 32 random bytes, base64url.' })
}, { additionalProperties: false })

export const CreatedSecret = Type.Object({
  ...ClientSecretInfo.properties,
  client_secret: Type.String({ description: 'Shown once, never again.' })
}, { additionalProperties: false })

export const ClientId = Type.Object({ id: Uuid }, { additionalProperties: false })
export const ClientSecretId = Type.Object({ id: Uuid, secretId: Uuid }, { additionalProperties: false })

/** POST /auth/token's form fields (RFC 6749 §4.4.2, client authentication by form fields §2.3.1); unknown fields are ignored, as the RFC requires. */
export const TokenRequest = Type.Object({
  grant_type: Type.String({ maxLength: 64, description: '`client_credentials`.' }),
  scope: Type.Optional(Type.String({ maxLength: 256, description: 'Space-separated scopes, a subset of the client\'s; all of them when absent.' })),
  client_id: Type.Optional(Type.String({ maxLength: 64, description: 'With client_secret, instead of HTTP Basic authentication.' })),
  client_secret: Type.Optional(Type.String({ maxLength: 256 }))
}, { additionalProperties: true })
export type TokenRequestBody = Static<typeof TokenRequest>

export const ClientToken = Type.Object({
  access_token: Type.String({ description: 'EdDSA-signed JWT (typ at+jwt), `sub` and `client_id` the client, `scope` the granted scopes.' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  scope: Type.String({ description: 'The granted scopes, space-separated.' })
}, { additionalProperties: false })
export type ClientTokenView = Static<typeof ClientToken>

/** RFC 6749 §5.2 error response. */
export const OAuthError = Type.Object({
  error: Type.Union(['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope'].map((e) => Type.Literal(e))),
  error_description: Type.String()
}, { additionalProperties: false, description: 'RFC 6749 §5.2 (application/json, not problem+json: the RFC wins on this route).' })
