import fp from 'fastify-plugin'
import { WEBHOOKS_CHANNEL } from '../src/webhooks/repository.ts'
import { createWebhooksService, type WebhooksService } from '../src/webhooks/service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Webhooks (src/webhooks/service.ts): endpoints, `emit` in a domain's transaction, the dispatcher. */
    webhooks: WebhooksService
  }
}

/**
 * Webhooks: the service over the pool. Its dispatcher starts when the app is
 * ready (unless WEBHOOK_DISPATCHER=false), woken through plugins/notifications.ts,
 * and stops on close after its sends in flight.
 */
export default fp(async (app) => {
  const { config } = app
  const webhooks = createWebhooksService({ db: app.db, config, secretKey: app.secretKey, log: app.log, mail: app.mail, audit: app.audit })
  app.decorate('webhooks', webhooks)
  if (config.WEBHOOK_ALLOW_PRIVATE && config.NODE_ENV === 'production') {
    app.log.warn('WEBHOOK_ALLOW_PRIVATE is true: webhooks may reach private and loopback addresses (SSRF protection off)')
  }
  if (config.WEBHOOK_DISPATCHER) {
    // Woken by the NOTIFY of a recorded event (the instance's one LISTEN connection), and after each reconnection.
    app.notifications.subscribe(WEBHOOKS_CHANNEL, { notify: () => { webhooks.wake() }, connected: () => { webhooks.wake() } })
    app.addHook('onReady', async () => { webhooks.start() })
  }
  app.addHook('onClose', async () => { await webhooks.stop() })
}, { name: 'webhooks', dependencies: ['config', 'db', 'secret-key', 'mail', 'audit', 'notifications'] })
