import type { FastifyBaseLogger } from 'fastify'
import { publicUrl, type Config } from '../config.ts'
import type { Database, Queryable } from '../infra/database.ts'
import { Dispatcher, type MailCounters } from './dispatcher.ts'
import { createOutboxRepository, type EmailRequest, type OutboxDepth } from './repository.ts'
import { createTransport } from './transports.ts'

export interface MailDeps {
  db: Database
  config: Config
  log: FastifyBaseLogger
}

/**
 * Email: the transport named by MAIL_TRANSPORT, the transactional outbox, and
 * the dispatcher that sends what the outbox holds (woken by `wake`: plugins/mail.ts
 * calls it on every NOTIFY of OUTBOX_CHANNEL).
 */
export function createMailService ({ db, config, log }: MailDeps) {
  const transport = createTransport(config, log)
  const repository = createOutboxRepository(db)
  const counters: MailCounters = { queued: 0, sent: 0, retried: 0, failed: 0 }
  const dispatcher = new Dispatcher({
    repository,
    transport,
    log: log.child({ component: 'mail' }),
    counters,
    publicUrl: publicUrl(config),
    maxAttempts: config.MAIL_MAX_ATTEMPTS,
    retryBase: config.MAIL_RETRY_BASE,
    pollInterval: config.MAIL_POLL_INTERVAL,
    sendTimeout: config.MAIL_SEND_TIMEOUT
  })

  return {
    /** The transport in use: log, smtp or ses. */
    transport: transport.name,
    /**
     * Queues an email in the outbox, in the caller's transaction: it is sent once
     * that transaction commits, never if it rolls back.
     */
    async enqueue (tx: Queryable, email: EmailRequest): Promise<void> {
      await repository.enqueue(tx, email)
      counters.queued++
    },
    /** Monotonic counters since start, for metrics. */
    counters: counters as Readonly<MailCounters>,
    /** False while the provider is unreachable (emails are held back and probed). */
    get providerAvailable (): boolean { return dispatcher.providerAvailable },
    /** Emails waiting in the outbox, emails given up on, and the age of the oldest waiting one. */
    depth: async (): Promise<OutboxDepth> => await repository.depth(),
    /** Runs one dispatch pass now (also when MAIL_DISPATCHER=false); resolves with the number of emails tried. */
    runOnce: async (): Promise<number> => await dispatcher.runOnce(),
    /** Starts the dispatcher. */
    start (): void {
      dispatcher.start()
    },
    /** Asks the dispatcher for a pass now: a row was queued (NOTIFY), or notifications may have been missed. */
    wake (): void {
      dispatcher.wake()
    },
    /** Stops the dispatcher, after the sends in flight are recorded, and closes the transport. */
    async stop (): Promise<void> {
      await dispatcher.stop()
      transport.close()
    }
  }
}

export type MailService = ReturnType<typeof createMailService>
