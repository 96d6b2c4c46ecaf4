import fp from 'fastify-plugin'
import { createClientsService, type ClientsService } from '../src/clients/service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** API clients and their token endpoint (src/clients/service.ts). */
    clients: ClientsService
  }
}

export default fp(async (app) => {
  app.decorate('clients', createClientsService({ db: app.db, audit: app.audit, tokens: app.auth }))
}, { name: 'clients', dependencies: ['db', 'audit', 'auth'] })
