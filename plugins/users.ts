import fp from 'fastify-plugin'
import { createUsersService, type UsersService } from '../src/users/service.ts'
import { User } from '../schemas/users.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The users resource (src/users/service.ts). */
    users: UsersService
  }
}

/**
 * The users resource: repository and service over the pool, and the shared
 * `User` schema. (Expired idempotency keys are deleted by the pruning job.)
 */
export default fp(async (app) => {
  app.addSchema(User)
  const users = createUsersService(app.db, app.secretKey, app.audit, app.webhooks)
  app.decorate('users', users)
}, { name: 'users', dependencies: ['config', 'db', 'secret-key', 'audit', 'webhooks'] })
