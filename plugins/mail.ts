import fp from 'fastify-plugin'
import { createMailService, type MailService } from '../src/mail/service.ts'
import { OUTBOX_CHANNEL } from '../src/mail/repository.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Email (src/mail/service.ts): enqueue in a transaction, dispatcher state for metrics. */
    mail: MailService
  }
}

/**
 * Email: the mail service over the pool. Its dispatcher starts when the app is
 * ready (unless MAIL_DISPATCHER=false), is woken by every NOTIFY on the outbox
 * channel (the instance's one LISTEN connection, plugins/notifications.ts; a
 * pass too after each reconnection, for rows queued meanwhile), and stops on
 * close after its sends in flight.
 */
export default fp(async (app) => {
  const { config } = app
  const mail = createMailService({ db: app.db, config, log: app.log })
  app.decorate('mail', mail)

  if (mail.transport === 'log' && config.NODE_ENV === 'production') {
    app.log.warn('MAIL_TRANSPORT is log: emails are written to the log, not sent')
  }
  app.log.info({ transport: mail.transport, dispatcher: config.MAIL_DISPATCHER }, 'email ready')

  if (config.MAIL_DISPATCHER) {
    app.notifications.subscribe(OUTBOX_CHANNEL, { notify: () => { mail.wake() }, connected: () => { mail.wake() } })
    app.addHook('onReady', async () => { mail.start() })
  }
  app.addHook('onClose', async () => { await mail.stop() })
}, { name: 'mail', dependencies: ['config', 'db', 'notifications'] })
