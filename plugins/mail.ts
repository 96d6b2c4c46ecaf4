import fp from 'fastify-plugin'
import { createMailService, type MailService } from '../src/mail/service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Email (src/mail/service.ts): enqueue in a transaction, dispatcher state for metrics. */
    mail: MailService
  }
}

/**
 * Email: the mail service over the pool. Its dispatcher starts when the app is
 * ready (unless MAIL_DISPATCHER=false) and stops on close after its sends in flight.
 */
export default fp(async (app) => {
  const { config } = app
  const mail = createMailService({ db: app.db, config, log: app.log, connectionString: app.pg.pool.options.connectionString as string })
  app.decorate('mail', mail)

  if (mail.transport === 'log' && config.NODE_ENV === 'production') {
    app.log.warn('MAIL_TRANSPORT is log: emails are written to the log, not sent')
  }
  app.log.info({ transport: mail.transport, dispatcher: config.MAIL_DISPATCHER }, 'email ready')

  if (config.MAIL_DISPATCHER) app.addHook('onReady', async () => { mail.start() })
  app.addHook('onClose', async () => { await mail.stop() })
}, { name: 'mail', dependencies: ['config', 'db'] })
