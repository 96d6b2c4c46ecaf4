import fp from 'fastify-plugin'
import { argon2Params, dummyHash } from '../src/infra/passwords.ts'
import { createSessionsService, type SessionsService } from '../src/sessions/service.ts'
import { createSecretBox } from '../src/infra/secret-box.ts'
import { TOTP_SECRET_PURPOSE } from '../src/infra/totp.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Logins, refresh, logout, the admin's sessions, the login lockout (src/sessions/service.ts). */
    sessions: SessionsService
  }
}

/** The sessions service, over the pool and the access tokens of plugins/auth.ts. */
export default fp(async (app) => {
  // Verified against when the email is unknown, at the configured cost: made once, here, at start.
  const unknownEmailHash = await dummyHash(argon2Params(app.config))
  const sessions = createSessionsService({ db: app.db, config: app.config, tokens: app.auth, log: app.log.child({ component: 'accounts' }), dummyHash: unknownEmailHash, totpSecrets: createSecretBox(app.secretKey, TOTP_SECRET_PURPOSE), signals: app.metrics.signals })
  app.decorate('sessions', sessions)
}, { name: 'sessions', dependencies: ['config', 'db', 'secret-key', 'auth', 'metrics'] })
