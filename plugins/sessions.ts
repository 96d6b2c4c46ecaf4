import fp from 'fastify-plugin'
import { argon2Params, dummyHash } from '../src/infra/passwords.ts'
import { createSessionsService, type SessionsService } from '../src/sessions/service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Logins, refresh, logout, the admin's sessions, the login lockout (src/sessions/service.ts). */
    sessions: SessionsService
  }
}

/** The sessions service. The dummy hash (verified against for unknown emails) is made once, here, at start. */
export default fp(async (app) => {
  const { config } = app
  app.decorate('sessions', createSessionsService({
    db: app.db,
    config,
    tokens: app.auth,
    log: app.log.child({ component: 'accounts' }),
    dummyHash: await dummyHash(argon2Params(config))
  }))
}, { name: 'sessions', dependencies: ['config', 'db', 'auth'] })
