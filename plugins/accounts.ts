import fp from 'fastify-plugin'
import { dummyHash } from '../src/auth/passwords.ts'
import { loadPasswordPolicy } from '../src/auth/policy.ts'
import { createAccountService, type AccountService } from '../src/auth/service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Admin accounts: register, confirm, login, sessions, profile, password reset (src/auth/service.ts). */
    accounts: AccountService
  }
}

/**
 * The admin-account service. The dummy hash (verified against for unknown
 * emails) and the common-password list are made once, here, at start.
 */
export default fp(async (app) => {
  const { config } = app
  const [policy, dummy] = await Promise.all([
    loadPasswordPolicy(),
    dummyHash({ memoryCost: config.ARGON2_MEMORY, timeCost: config.ARGON2_TIME, parallelism: config.ARGON2_PARALLELISM })
  ])
  const accounts = createAccountService({ db: app.db, config, mail: app.mail, auth: app.auth, log: app.log.child({ component: 'accounts' }), policy, dummyHash: dummy })
  app.decorate('accounts', accounts)

  // A lockout error carries the seconds to wait: answer them as Retry-After.
  app.addHook('onError', async (_request, reply, err) => {
    const retryAfter = (err as { retryAfter?: unknown }).retryAfter
    if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter))
  })
  // Emails asked for just before a shutdown are still queued.
  app.addHook('onClose', async () => { await accounts.drain() })
}, { name: 'accounts', dependencies: ['config', 'db', 'mail', 'auth'] })
