import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problems } from '../../schemas/problem.ts'
import { Jwks } from '../../schemas/sessions.ts'

/** Served at /.well-known (autoload cannot be relied on to pick up a dot-folder once compiled, hence the override). */
export const prefixOverride = '/.well-known'

/** GET /.well-known/jwks.json: the public keys that verify access tokens, the whole fleet's (src/sessions/keyring.ts). */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/jwks.json', {
    config: { public: true },
    schema: {
      tags: ['auth'],
      summary: 'Public keys verifying access tokens (JWKS)',
      description: 'Ed25519 keys as JWK (RFC 8037): this instance\'s signing key first, then its previous keys kept during a rotation, then the keys every other instance on the same database signs or verifies with (held within ACCESS_TOKEN_TTL). Other services verify Roster\'s access tokens with these (alg EdDSA, typ at+jwt, pinned iss and aud).',
      response: { 200: Jwks, ...problems() }
    }
  }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300')
    return { keys: app.auth.keyring.keys.map((k) => k.jwk) }
  })
}
export default plugin
