import fp from 'fastify-plugin'
import { createInvitationsService, type InvitationsService } from '../src/invitations/service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Invitations to become an admin (src/invitations/service.ts). */
    invitations: InvitationsService
  }
}

export default fp(async (app) => {
  app.decorate('invitations', createInvitationsService({ db: app.db, config: app.config, mail: app.mail, audit: app.audit, admins: app.admins }))
}, { name: 'invitations', dependencies: ['config', 'db', 'mail', 'audit', 'admins'] })
