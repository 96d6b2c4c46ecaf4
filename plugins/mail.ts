import fp from 'fastify-plugin'
import { publicUrl } from '../src/config.ts'
import { Dispatcher, type MailCounters } from '../src/mail/dispatcher.ts'
import { createOutboxRepository, enqueueEmail, type EmailRequest, type Queryable } from '../src/mail/outbox.ts'
import { createTransport } from '../src/mail/transports.ts'

export interface Mail {
  /** The transport in use: log, smtp or ses. */
  readonly transport: 'log' | 'smtp' | 'ses'
  /**
   * Queues an email in the outbox, in the caller's transaction: it is sent once
   * that transaction commits, never if it rolls back.
   */
  enqueue: (tx: Queryable, email: EmailRequest) => Promise<void>
  /** Monotonic counters since start, for metrics. */
  readonly counters: Readonly<MailCounters>
  /** False while the provider is unreachable (emails are held back and probed). */
  readonly providerAvailable: boolean
  /** Emails waiting in the outbox, and emails given up on. */
  depth: () => Promise<{ pending: number, failed: number }>
  /** Runs one dispatch pass now (also when MAIL_DISPATCHER=false); resolves with the number of emails tried. */
  runOnce: () => Promise<number>
}

declare module 'fastify' {
  interface FastifyInstance {
    mail: Mail
  }
}

/**
 * Email: the transport named by MAIL_TRANSPORT and the dispatcher that sends
 * what the transactional outbox holds (src/mail/dispatcher.ts). The dispatcher
 * starts when the app is ready and stops on close after its sends in flight.
 */
export default fp(async (app) => {
  const { config } = app
  const transport = createTransport(config, app.log)
  const repository = createOutboxRepository(app.db)
  const counters: MailCounters = { queued: 0, sent: 0, retried: 0, failed: 0 }
  const dispatcher = new Dispatcher({
    repository,
    transport,
    log: app.log.child({ component: 'mail' }),
    counters,
    connectionString: app.pg.pool.options.connectionString as string,
    connectionTimeout: config.DB_CONNECTION_TIMEOUT,
    publicUrl: publicUrl(config),
    maxAttempts: config.MAIL_MAX_ATTEMPTS,
    retryBase: config.MAIL_RETRY_BASE,
    pollInterval: config.MAIL_POLL_INTERVAL,
    sendTimeout: config.MAIL_SEND_TIMEOUT
  })

  app.decorate('mail', {
    transport: transport.name,
    async enqueue (tx: Queryable, email: EmailRequest) {
      await enqueueEmail(tx, email)
      counters.queued++
    },
    counters,
    get providerAvailable () { return dispatcher.providerAvailable },
    depth: () => repository.depth(),
    runOnce: () => dispatcher.runOnce()
  } satisfies Mail)

  if (transport.name === 'log' && config.NODE_ENV === 'production') {
    app.log.warn('MAIL_TRANSPORT is log: emails are written to the log, not sent')
  }
  app.log.info({ transport: transport.name, dispatcher: config.MAIL_DISPATCHER }, 'email ready')

  if (config.MAIL_DISPATCHER) app.addHook('onReady', async () => { dispatcher.start() })
  app.addHook('onClose', async () => {
    await dispatcher.stop()
    transport.close()
  })
}, { name: 'mail', dependencies: ['config', 'db'] })
