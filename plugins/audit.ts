import fp from 'fastify-plugin'
import { createAuditService, type AuditService } from '../src/audit/service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The audit log: record in a change's transaction, list a page (src/audit/service.ts). */
    audit: AuditService
  }
}

export default fp(async (app) => {
  app.decorate('audit', createAuditService(app.db, app.secretKey))
}, { name: 'audit', dependencies: ['db', 'secret-key'] })
