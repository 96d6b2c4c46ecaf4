import { setTimeout as delay } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import pg from 'pg'
import type { Queryable } from './database.ts'

export interface Subscription {
  /** Called with the payload of every NOTIFY on the channel (this instance's own included). */
  notify: (payload: string) => void
  /**
   * Called once the channel is listened to, after every (re)connection:
   * notifications sent while nobody listened are lost, so catch up here
   * (the outbox looks for due rows, the session cache forgets everything).
   */
  connected: () => void
}

export interface ListenerOptions {
  /** PostgreSQL URL of the LISTEN connection: a session of its own (behind PgBouncer in transaction pooling: the server itself). */
  connectionString: string
  connectionTimeout: number
  /** Milliseconds between two connection attempts after a loss. */
  retryDelay: number
  /**
   * Milliseconds between two checks that the connection still answers (`SELECT 1`, answered within
   * connectionTimeout or the connection is lost). A connection dropped silently (a NAT's or a load
   * balancer's idle timeout, a host gone) sends no error: without the checks it would be found only by
   * the kernel's keep-alive, two hours later by default, hearing nothing meanwhile. The checks also
   * keep such idle timeouts from dropping it.
   */
  heartbeat: number
  log: FastifyBaseLogger
}

/** Channel names are identifiers chosen in code, never input: checked anyway, since LISTEN takes no parameter. */
const CHANNEL = /^[a-z_][a-z0-9_]*$/

/**
 * THE LISTEN connection of an instance: one dedicated PostgreSQL session that
 * listens on every subscribed channel (outbox wake-ups, ended sessions), is
 * checked every `heartbeat` and is reconnected after it drops. Subscribe
 * before `start`.
 */
export class Listener {
  private readonly subscriptions = new Map<string, Subscription[]>()
  private stopped = false
  private readonly stopping = new AbortController()
  private done: Promise<void> = Promise.resolve()
  private drop: () => void = () => {}

  constructor (private readonly opts: ListenerOptions) {}

  subscribe (channel: string, subscription: Subscription): void {
    if (!CHANNEL.test(channel)) throw new Error(`not a channel name: ${channel}`)
    this.subscriptions.set(channel, [...(this.subscriptions.get(channel) ?? []), subscription])
  }

  /** Connects, unless nothing was subscribed. */
  start (): void {
    if (this.subscriptions.size > 0) this.done = this.listen()
  }

  /** Closes the LISTEN connection and stops reconnecting. */
  async stop (): Promise<void> {
    this.stopped = true
    this.stopping.abort()
    this.drop()
    await this.done
  }

  private async listen (): Promise<void> {
    const { log, connectionTimeout } = this.opts
    let lost = false
    let first = true
    while (!this.stopped) {
      const client = new pg.Client({
        connectionString: this.opts.connectionString,
        connectionTimeoutMillis: connectionTimeout,
        application_name: 'roster-listener',
        keepAlive: true
      })
      // Settles once: the connection failed, closed, stopped answering (a reason), or the listener stops (null).
      let end!: (reason: unknown) => void
      const ended = new Promise<unknown>((resolve) => { end = resolve })
      client.on('error', end)
      client.on('end', () => { end(new Error('connection ended')) })
      this.drop = () => { end(null) }
      client.on('notification', (message) => {
        // Only subscribed channels are listened to; PostgreSQL always sends a payload ('' when none).
        for (const s of this.subscriptions.get(message.channel) as Subscription[]) s.notify(message.payload as string)
      })
      /** `work` on the connection, which is lost unless it is answered within connectionTimeout. */
      const answered = async (work: () => Promise<unknown>): Promise<void> => {
        const late = setTimeout(() => { end(new Error(`the connection did not answer within ${connectionTimeout} ms`)) }, connectionTimeout).unref()
        try {
          await work()
        } finally {
          clearTimeout(late)
        }
      }
      let check: NodeJS.Timeout | undefined
      try {
        await client.connect()
        // The LISTENs too are answered in time, or the connection is lost: silent from the start, it must not hold the listener.
        const listening = answered(async () => { for (const channel of this.subscriptions.keys()) await client.query(`LISTEN ${channel}`) })
        listening.catch(() => {}) // failing after the connection ended, it was reported by `ended`
        const setUp = await Promise.race([listening.then(() => true), ended])
        if (setUp !== true) throw setUp ?? new Error('stopped')
        if (lost) log.info('database listener reconnected')
        else if (first) log.info({ channels: [...this.subscriptions.keys()] }, 'database listener connected')
        lost = false
        first = false
        for (const s of [...this.subscriptions.values()].flat()) s.connected()
        // One check at a time, while listening.
        let checking = false
        check = setInterval(() => {
          if (checking) return
          checking = true
          answered(async () => await client.query('SELECT 1')).then(() => { checking = false }, end)
        }, this.opts.heartbeat).unref()
        const reason = await ended
        if (reason !== null) {
          log.warn({ err: reason }, 'database listener lost: reconnecting')
          lost = true
        }
      } catch (err) {
        if (!this.stopped) log.debug({ err }, 'database listener cannot connect')
        lost = true
      }
      clearInterval(check)
      await this.close(client)
      await delay(this.opts.retryDelay, undefined, { signal: this.stopping.signal }).catch(() => {})
    }
  }

  /**
   * Ends a connection: with a goodbye when it still answers (node-postgres cuts it at once when a
   * query is pending: a check that got no answer), and within connectionTimeout in any case — a host
   * gone silent never acknowledges the goodbye, and the instance's shutdown must not wait for it.
   */
  private async close (client: pg.Client): Promise<void> {
    const goodbye = client.end().catch(() => {})
    if (await Promise.race([goodbye.then(() => true), delay(this.opts.connectionTimeout, false, { ref: false })])) return
    // node-postgres's own way to cut a connection whose query hangs (Client#end), which a goodbye never reached.
    (client as unknown as { connection: { stream: { destroy: () => void } } }).connection.stream.destroy()
    await goodbye
  }
}

/** Sends a notification on `channel`; delivered when the statement's transaction (`db`: the pool, or the caller's) commits. */
export async function notify (db: Queryable, channel: string, payload: string): Promise<void> {
  await db.query({ name: 'notify', text: 'SELECT pg_notify($1, $2)', values: [channel, payload] })
}
