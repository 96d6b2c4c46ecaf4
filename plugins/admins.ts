import fp from 'fastify-plugin'
import { loadPasswordPolicy } from '../src/admins/policy.ts'
import { createAdminsService, type AdminsService } from '../src/admins/service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Admin accounts: register, confirm, profile, password reset, the list of admins (src/admins/service.ts). */
    admins: AdminsService
  }
}

/** The admin-account service. The common-password list is loaded once, here, at start. */
export default fp(async (app) => {
  const admins = createAdminsService({
    db: app.db,
    config: app.config,
    mail: app.mail,
    audit: app.audit,
    webhooks: app.webhooks,
    sessions: app.sessions,
    log: app.log.child({ component: 'accounts' }),
    policy: await loadPasswordPolicy(),
    secretKey: app.secretKey
  })
  app.decorate('admins', admins)
  // Emails asked for just before a shutdown are still queued.
  app.addHook('onClose', async () => { await admins.drain() })
}, { name: 'admins', dependencies: ['config', 'db', 'secret-key', 'mail', 'audit', 'sessions', 'webhooks'] })
