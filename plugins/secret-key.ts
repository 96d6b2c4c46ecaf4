import fp from 'fastify-plugin'
import { loadSecretKey } from '../src/infra/secret-key.ts'
import { resolveFromRoot } from '../src/infra/paths.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * SECRET_KEY: keys Roster's own HMACs (list cursors, idempotency
     * fingerprints), never a token-signing key. Given, or generated once under
     * DATA_DIR outside production (src/infra/secret-key.ts).
     */
    secretKey: string
  }
}

/** Provides `app.secretKey` (src/infra/secret-key.ts). */
export default fp(async (app) => {
  const { config } = app
  app.decorate('secretKey', loadSecretKey({
    secretKey: config.SECRET_KEY,
    production: config.NODE_ENV === 'production',
    dataDir: resolveFromRoot(config.DATA_DIR)
  }))
}, { name: 'secret-key', dependencies: ['config'] })
