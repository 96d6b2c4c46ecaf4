/**
 * Real peers on loopback for the mail tests: an SMTP server (smtp-server,
 * messages parsed with mailparser), a TCP proxy that can cut the database off,
 * and a bounded wait.
 */
import net from 'node:net'
import { SMTPServer, type SMTPServerAddress } from 'smtp-server'
import { simpleParser, type ParsedMail } from 'mailparser'
import pg from 'pg'
import { freePort } from '../../db/embedded.ts'
import type { TestContext } from '../helper.ts'

export interface Delivery {
  /** Envelope recipients. */
  to: string[]
  mail: ParsedMail
}

export interface SmtpPeerOptions {
  /** Required credentials; without them the peer accepts anonymous mail. */
  auth?: { user: string, pass: string }
  /** Answer to RCPT TO: an Error with responseCode rejects the recipient. */
  rcpt?: (address: string) => Error | undefined
  /** Runs when a message arrives, before the peer accepts it. */
  beforeAccept?: (delivery: Delivery) => Promise<void>
}

export interface SmtpPeer {
  readonly port: number
  readonly deliveries: Delivery[]
  /** Every RCPT TO received, accepted or not. */
  readonly rcpts: string[]
  /** Listens (again) on the same port. */
  start: () => Promise<void>
  /** Stops listening. */
  stop: () => Promise<void>
  /** Deliveries per envelope recipient. */
  counts: () => Map<string, number>
}

export function rejection (responseCode: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode })
}

/** An SMTP server on 127.0.0.1 (not started: call start()), stopped when the test ends. */
export async function smtpPeer (t: TestContext, opts: SmtpPeerOptions = {}): Promise<SmtpPeer> {
  const port = await freePort()
  const deliveries: Delivery[] = []
  const rcpts: string[] = []
  let server: SMTPServer | null = null

  const peer: SmtpPeer = {
    port,
    deliveries,
    rcpts,
    async start () {
      const s = new SMTPServer({
        disabledCommands: opts.auth === undefined ? ['STARTTLS', 'AUTH'] : ['STARTTLS'],
        allowInsecureAuth: true,
        authOptional: opts.auth === undefined,
        logger: false,
        disableReverseLookup: true,
        closeTimeout: 100,
        onAuth (auth, _session, cb) {
          if (auth.username === opts.auth?.user && auth.password === opts.auth?.pass) cb(null, { user: auth.username })
          else cb(rejection(535, 'authentication failed'))
        },
        onRcptTo (address: SMTPServerAddress, _session, cb) {
          rcpts.push(address.address)
          cb(opts.rcpt?.(address.address) ?? null)
        },
        onData (stream, session, cb) {
          simpleParser(stream).then(async (mail) => {
            const delivery = { to: session.envelope.rcptTo.map((a) => a.address), mail }
            await opts.beforeAccept?.(delivery)
            deliveries.push(delivery)
            cb(null)
          }, cb)
        }
      })
      await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', resolve))
      server = s
    },
    async stop () {
      const s = server as SMTPServer
      server = null
      await new Promise<void>((resolve) => s.close(() => resolve()))
    },
    counts () {
      const m = new Map<string, number>()
      for (const d of deliveries) for (const to of d.to) m.set(to, (m.get(to) ?? 0) + 1)
      return m
    }
  }
  t.after(async () => { if (server !== null) await peer.stop() })
  return peer
}

export interface DbProxy {
  /** DATABASE_URL going through the proxy. */
  readonly url: string
  /** Drops every connection and refuses new ones. */
  down: () => Promise<void>
  up: () => Promise<void>
}

/** A TCP proxy in front of the test database, to take the database away from an app and give it back. */
export async function dbProxy (t: TestContext, databaseUrl: string): Promise<DbProxy> {
  const target = new URL(databaseUrl)
  const port = await freePort()
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => { sockets.delete(s); client.destroy(); upstream.destroy() })
    }
    client.pipe(upstream).pipe(client)
  })
  const listen = () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  const down = async (): Promise<void> => {
    const closed = new Promise((resolve) => server.close(resolve))
    for (const s of sockets) s.destroy()
    await closed
  }
  await listen()
  t.after(async () => { if (server.listening) await down() })
  const url = new URL(databaseUrl)
  url.hostname = '127.0.0.1'
  url.port = String(port)
  return { url: url.href, down, up: listen }
}

/** Reads the outbox with a client of its own (works after the app closed). */
export async function outboxRows (databaseUrl: string): Promise<Array<{ id: string, recipient: string, status: string, attempts: number, payload: Record<string, unknown>, lastError: string | null, providerMessageId: string | null }>> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    const { rows } = await client.query(`SELECT id, recipient, status, attempts, payload, last_error AS "lastError", provider_message_id AS "providerMessageId"
      FROM email_outbox ORDER BY created_at, recipient`)
    return rows
  } finally {
    await client.end()
  }
}
