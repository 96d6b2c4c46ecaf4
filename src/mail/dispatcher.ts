import { setTimeout as delay } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { ClaimedEmail, OutboxRepository } from './repository.ts'
import { renderEmail, type Message } from './templates.ts'
import { retryDelay } from '../infra/backoff.ts'
import { DeliveryError, type FailureKind, type Transport } from './transports.ts'

/** Emails claimed and sent at once in one batch. */
export const BATCH_SIZE = 5

/** Counters for metrics: emails queued by this instance, and what its dispatcher did. */
export interface MailCounters {
  queued: number
  sent: number
  /** Failed tries after which the email stays pending for another one. */
  retried: number
  failed: number
}

export interface DispatcherOptions {
  repository: OutboxRepository
  transport: Transport
  log: FastifyBaseLogger
  counters: MailCounters
  publicUrl: string
  maxAttempts: number
  retryBase: number
  pollInterval: number
  sendTimeout: number
}

type Outcome =
  | { email: ClaimedEmail, ok: true, messageId: string | null }
  | { email: ClaimedEmail, ok: false, kind: FailureKind, error: string, probe: boolean }

/**
 * Sends what the outbox holds: the dispatch policy. Polls every
 * MAIL_POLL_INTERVAL, and passes sooner when woken (`wake`: a NOTIFY, through
 * plugins/mail.ts). Each pass claims
 * due rows in short statements, sends outside any transaction, and records the
 * outcome. While the provider is unreachable it sends one email per poll (a probe,
 * which does not use up an attempt) and holds back the rest.
 */
export class Dispatcher {
  private stopped = false
  private readonly stopping = new AbortController()
  /** True while the provider is unreachable: one probe per poll interval, notifications ignored. */
  private outage = false
  private databaseDown = false
  private woken = false
  private wakeUp = new AbortController()
  private pass: Promise<unknown> = Promise.resolve()
  /** Outcomes of sends whose recording failed (database down): recorded before anything else is claimed. */
  private readonly unrecorded: Outcome[] = []
  private loopDone: Promise<void> = Promise.resolve()

  constructor (private readonly opts: DispatcherOptions) {}

  /** True unless the last tries found the provider unreachable. */
  get providerAvailable (): boolean {
    return !this.outage
  }

  start (): void {
    this.loopDone = this.loop()
  }

  /** Asks for a pass now (a new row was queued). Ignored while the provider is unreachable. */
  wake (): void {
    this.woken = true
    if (!this.outage) this.wakeUp.abort()
  }

  /**
   * One pass, now: records pending outcomes, then claims and sends due emails
   * until none is due (or, while the provider is unreachable, sends one probe).
   * Passes never overlap; resolves with the number of emails tried.
   */
  runOnce (): Promise<number> {
    const next = this.pass.then(() => this.dispatch())
    this.pass = next.catch(() => {})
    return next
  }

  /** Stops claiming, lets the sends in flight finish and be recorded. */
  async stop (): Promise<void> {
    this.stopped = true
    this.stopping.abort()
    await Promise.all([this.loopDone, this.pass])
    if (this.unrecorded.length > 0) {
      await this.recordAll().catch((err: unknown) => {
        this.opts.log.error({ err, emailIds: this.unrecorded.map((o) => o.email.id) }, 'could not record the outcome of sent emails: they will be sent again')
      })
    }
  }

  private async dispatch (): Promise<number> {
    this.woken = false
    await this.recordAll()
    let tried = 0
    while (!this.stopped) {
      const probe = this.outage
      const emails = await this.opts.repository.claim(probe ? 1 : BATCH_SIZE, 2 * this.opts.sendTimeout + 10_000)
      if (emails.length === 0) break
      const outcomes = await Promise.all(emails.map((email) => this.attempt(email, probe)))
      tried += emails.length
      this.unrecorded.push(...outcomes)
      await this.recordAll()
      const reached = outcomes.some((o) => o.ok || o.kind !== 'unavailable')
      if (this.outage && reached) this.opts.log.info('email provider reachable again')
      if (!this.outage && !reached) this.opts.log.warn('email provider unreachable: holding emails back, one probe per poll')
      this.outage = !reached
      if (this.outage) break
    }
    return tried
  }

  private async attempt (email: ClaimedEmail, probe: boolean): Promise<Outcome> {
    try {
      const message: Message = renderEmail(email.template, email.recipient, email.payload, this.opts.publicUrl)
      const messageId = await this.opts.transport.send(message, AbortSignal.timeout(this.opts.sendTimeout))
      return { email, ok: true, messageId }
    } catch (err) {
      // Anything but a DeliveryError comes from rendering: this row can never be sent.
      const kind = err instanceof DeliveryError ? err.kind : 'permanent'
      return { email, ok: false, kind, error: (err as Error).message.slice(0, 1000), probe }
    }
  }

  private async recordAll (): Promise<void> {
    while (this.unrecorded.length > 0) {
      await this.record(this.unrecorded[0] as Outcome)
      this.unrecorded.shift()
    }
  }

  private async record (outcome: Outcome): Promise<void> {
    const { repository, counters, log, maxAttempts, retryBase } = this.opts
    const { email } = outcome
    const ids = { emailId: email.id, template: email.template }
    if (outcome.ok) {
      await repository.markSent(email.id, email.attempts + 1, outcome.messageId)
      counters.sent++
      log.info({ ...ids, providerMessageId: outcome.messageId }, 'email sent')
      return
    }
    // A probe that finds the provider still down does not count: emails are not lost to an outage.
    const attempts = outcome.probe && outcome.kind === 'unavailable' ? email.attempts : email.attempts + 1
    if (outcome.kind === 'permanent' || attempts >= maxAttempts) {
      await repository.markFailed(email.id, attempts, outcome.error)
      counters.failed++
      log.error({ ...ids, to: email.recipient, attempts, reason: outcome.error, kind: outcome.kind }, 'email not delivered: given up')
      return
    }
    // An unreachable provider is probed every poll, so the email itself waits for nothing.
    const wait = outcome.kind === 'unavailable' ? 0 : retryDelay(attempts, retryBase)
    await repository.reschedule(email.id, attempts, outcome.error, wait)
    counters.retried++
    log.warn({ ...ids, attempts, reason: outcome.error, kind: outcome.kind, retryInMs: wait }, 'email not delivered yet: will retry')
  }

  private async loop (): Promise<void> {
    while (!this.stopped) {
      try {
        await this.runOnce()
        if (this.databaseDown) this.opts.log.info('email outbox reachable again')
        this.databaseDown = false
      } catch (err) {
        // Logged once per outage; the next poll tries again.
        if (!this.databaseDown) this.opts.log.warn({ err }, 'email outbox unreachable: will retry')
        this.databaseDown = true
      }
      if (this.woken && !this.outage) continue
      this.wakeUp = new AbortController()
      await delay(this.opts.pollInterval, undefined, { signal: AbortSignal.any([this.wakeUp.signal, this.stopping.signal]) }).catch(() => {})
    }
  }
}
