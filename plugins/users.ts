import fp from 'fastify-plugin'
import { createUsersService, type UsersService } from '../src/users/service.ts'
import { User } from '../schemas/users.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The users resource (src/users/service.ts). */
    users: UsersService
  }
}

/** How often expired idempotency keys are deleted. */
const PURGE_INTERVAL = 10 * 60 * 1000

/**
 * The users resource: repository and service over the pool, the shared `User`
 * schema, and the periodic purge of expired idempotency keys.
 */
export default fp(async (app) => {
  app.addSchema(User)
  const users = createUsersService(app.db, app.secretKey, app.audit, app.webhooks)
  app.decorate('users', users)

  async function purge (): Promise<void> {
    try {
      const purged = await users.purgeExpiredKeys()
      if (purged > 0) app.log.info({ purged }, 'expired idempotency keys deleted')
    } catch (err) {
      app.log.warn({ err }, 'could not delete expired idempotency keys')
    }
  }
  let timer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    await purge()
    timer = setInterval(purge, PURGE_INTERVAL).unref()
  })
  app.addHook('onClose', async () => { clearInterval(timer) })
}, { name: 'users', dependencies: ['config', 'db', 'secret-key', 'audit', 'webhooks'] })
