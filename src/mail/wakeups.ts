import { setTimeout as delay } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import pg from 'pg'
import { OUTBOX_CHANNEL } from './repository.ts'

export interface WakeupsOptions {
  /** PostgreSQL URL for the LISTEN connection. */
  connectionString: string
  connectionTimeout: number
  /** The dispatcher's poll interval: reconnecting waits at most this (and at most a second). */
  pollInterval: number
  log: FastifyBaseLogger
  /** Called on every NOTIFY, and once after each (re)connection for rows queued while nobody listened. */
  wake: () => void
}

/**
 * The dispatcher's wake-ups: a dedicated LISTEN connection on the outbox
 * channel, reconnected after it drops; polling covers the gaps.
 */
export class Wakeups {
  private stopped = false
  private readonly stopping = new AbortController()
  private done: Promise<void> = Promise.resolve()
  private drop: () => void = () => {}

  constructor (private readonly opts: WakeupsOptions) {}

  start (): void {
    this.done = this.listen()
  }

  /** Closes the LISTEN connection and stops reconnecting. */
  async stop (): Promise<void> {
    this.stopped = true
    this.stopping.abort()
    this.drop()
    await this.done
  }

  private async listen (): Promise<void> {
    const { log } = this.opts
    let lost = false
    while (!this.stopped) {
      const client = new pg.Client({
        connectionString: this.opts.connectionString,
        connectionTimeoutMillis: this.opts.connectionTimeout,
        application_name: 'roster-outbox-listener',
        keepAlive: true
      })
      const ended = new Promise<unknown>((resolve) => {
        client.on('error', resolve)
        client.on('end', () => resolve(new Error('connection ended')))
        this.drop = () => resolve(null)
      })
      client.on('notification', () => this.opts.wake())
      try {
        await client.connect()
        await client.query(`LISTEN ${OUTBOX_CHANNEL}`)
        if (lost) log.info('email outbox listener reconnected')
        lost = false
        this.opts.wake() // rows queued while nobody listened
        const reason = await ended
        if (reason !== null) {
          log.warn({ err: reason }, 'email outbox listener lost: reconnecting')
          lost = true
        }
      } catch (err) {
        log.debug({ err }, 'email outbox listener cannot connect')
        lost = true
      }
      await client.end().catch(() => {})
      await delay(Math.min(this.opts.pollInterval, 1000), undefined, { signal: this.stopping.signal }).catch(() => {})
    }
  }
}
