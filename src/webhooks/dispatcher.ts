import { setTimeout as delay } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { MailService } from '../mail/service.ts'
import { retryDelay } from '../infra/backoff.ts'
import { transaction, type Database } from '../infra/database.ts'
import type { ClaimedDelivery, WebhooksRepository } from './repository.ts'
import type { Send, SendResult } from './sender.ts'

/** Longest wait between two tries of one delivery. */
export const MAX_WEBHOOK_RETRY_DELAY = 3_600_000

/** Counters for metrics: what this instance's dispatcher did. */
export interface WebhookCounters {
  delivered: number
  /** Failed tries after which the delivery stays pending for another one. */
  retried: number
  failed: number
  /** Endpoints disabled after failing for the whole retry window. */
  disabled: number
}

export interface WebhookDispatcherOptions {
  db: Database
  repository: WebhooksRepository
  send: Send
  /** Opens the signing secrets stored for an endpoint. */
  openSecret: (sealed: string, endpointId: string) => string
  mail: Pick<MailService, 'enqueue'>
  log: FastifyBaseLogger
  counters: WebhookCounters
  batchSize: number
  timeout: number
  retryBase: number
  retryWindow: number
  pollInterval: number
}

/**
 * Sends what the webhook outbox holds. Polls every WEBHOOK_POLL_INTERVAL and
 * passes sooner when woken (a NOTIFY). Each pass claims due deliveries in short
 * statements (FOR UPDATE SKIP LOCKED, a lease: safe with many instances), sends
 * them outside any transaction, each cut off after WEBHOOK_TIMEOUT, and records
 * each outcome with the endpoint's health in one transaction.
 */
export class WebhookDispatcher {
  private stopped = false
  private readonly stopping = new AbortController()
  private woken = false
  private wakeUp = new AbortController()
  private pass: Promise<unknown> = Promise.resolve()
  private loopDone: Promise<void> = Promise.resolve()
  private databaseDown = false

  constructor (private readonly opts: WebhookDispatcherOptions) {}

  start (): void {
    this.loopDone = this.loop()
  }

  /** Asks for a pass now (a delivery was queued). */
  wake (): void {
    this.woken = true
    this.wakeUp.abort()
  }

  /** One pass now: claims and sends due deliveries until none is due. Passes never overlap; resolves with the number tried. */
  runOnce (): Promise<number> {
    const next = this.pass.then(() => this.dispatch())
    this.pass = next.catch(() => {})
    return next
  }

  /** Stops claiming; the sends in flight finish and are recorded. */
  async stop (): Promise<void> {
    this.stopped = true
    this.stopping.abort()
    await Promise.all([this.loopDone, this.pass])
  }

  private async dispatch (): Promise<number> {
    this.woken = false
    let tried = 0
    while (!this.stopped) {
      const deliveries = await this.opts.repository.claim(this.opts.batchSize, 2 * this.opts.timeout + 10_000)
      if (deliveries.length === 0) break
      await Promise.all(deliveries.map(async (delivery) => { await this.record(delivery, await this.attempt(delivery)) }))
      tried += deliveries.length
    }
    return tried
  }

  private async attempt (delivery: ClaimedDelivery): Promise<SendResult> {
    const { openSecret, send } = this.opts
    const secrets = [delivery.secret, delivery.previousSecret].filter((s) => s !== null).map((s) => openSecret(s, delivery.endpointId))
    return await send({ url: delivery.url, id: delivery.messageId, body: JSON.stringify(delivery.payload), secrets })
  }

  private async record (delivery: ClaimedDelivery, result: SendResult): Promise<void> {
    const { db, repository, counters, log, retryBase, retryWindow, mail } = this.opts
    const ids = { deliveryId: delivery.id, webhookId: delivery.messageId, endpointId: delivery.endpointId }
    const wait = retryDelay(delivery.attempts + 1, retryBase, Math.random(), MAX_WEBHOOK_RETRY_DELAY)
    const { status, disabled } = await transaction(db, async (tx) => {
      const status = await repository.recordAttempt(tx, delivery.id, result, retryWindow, wait)
      // Gone: its endpoint was deleted while it was being sent (its row locked by the update, so not while recording).
      if (status === null) return { status, disabled: null }
      const disabled = await repository.endpointOutcome(tx, delivery.endpointId, result.ok, retryWindow)
      if (disabled !== null) {
        const hours = Math.round(retryWindow / 3_600_000)
        await repository.disable(tx, disabled.id, `every delivery failed for ${hours} h`)
        for (const owner of await repository.ownersToTell(tx, disabled.createdBy)) {
          await mail.enqueue(tx, { template: 'webhook_disabled', to: owner.email, data: { name: owner.name, webhookId: disabled.id, url: disabled.url, hours } })
        }
      }
      return { status, disabled }
    })
    if (status === null) {
      log.info(ids, 'webhook sent to an endpoint deleted meanwhile: not recorded')
    } else if (status === 'delivered') {
      counters.delivered++
      log.info({ ...ids, statusCode: result.statusCode, durationMs: result.durationMs }, 'webhook delivered')
    } else if (status === 'failed') {
      counters.failed++
      log.error({ ...ids, attempts: delivery.attempts + 1, reason: result.error }, 'webhook not delivered: given up')
    } else {
      counters.retried++
      log.warn({ ...ids, attempts: delivery.attempts + 1, reason: result.error, retryInMs: wait }, 'webhook not delivered yet: will retry')
    }
    if (disabled !== null) {
      counters.disabled++
      log.error({ endpointId: disabled.id }, 'webhook endpoint disabled: its deliveries failed for the whole retry window')
    }
  }

  private async loop (): Promise<void> {
    while (!this.stopped) {
      try {
        await this.runOnce()
        if (this.databaseDown) this.opts.log.info('webhook outbox reachable again')
        this.databaseDown = false
      } catch (err) {
        // Logged once per outage; the next poll tries again (claimed rows come back when their lease ends).
        if (!this.databaseDown) this.opts.log.warn({ err }, 'webhook outbox unreachable: will retry')
        this.databaseDown = true
      }
      if (this.woken) continue
      this.wakeUp = new AbortController()
      await delay(this.opts.pollInterval, undefined, { signal: AbortSignal.any([this.wakeUp.signal, this.stopping.signal]) }).catch(() => {})
    }
  }
}
