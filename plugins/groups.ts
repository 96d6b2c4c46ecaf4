import fp from 'fastify-plugin'
import { createGroupsService, type GroupsService } from '../src/groups/service.ts'
import { Group } from '../schemas/groups.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The groups resource (src/groups/service.ts). */
    groups: GroupsService
  }
}

/** The groups resource: repository and service over the pool, and the shared `Group` schema. */
export default fp(async (app) => {
  app.addSchema(Group)
  app.decorate('groups', createGroupsService(app.db, app.secretKey, app.audit, app.webhooks))
}, { name: 'groups', dependencies: ['config', 'db', 'secret-key', 'audit', 'webhooks'] })
