/**
 * Database connections failing under the app (in-process, real PostgreSQL):
 * a checked-out connection dying mid-transaction, a database that stops
 * answering without closing anything, and what such failures write to the log.
 */
import t from 'tap'
import net from 'node:net'
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import pino from 'pino'
import type { FastifyBaseLogger } from 'fastify'
import { build, createTestDatabase, LogCapture, type TestContext, waitUntil } from '../helper.ts'
import { freePort } from '../../db/embedded.ts'
import { errors } from '../../src/infra/errors.ts'
import { serializeError } from '../../src/server-options.ts'
import { transaction } from '../../src/infra/database.ts'
import { Listener, notify } from '../../src/infra/notifications.ts'

t.test('a checked-out connection dying between two statements: no crash, a 503, the pool recovers', async (t) => {
  let backendPid = 0
  let proceed: () => void = () => {}
  const app = await build(t, {
    extend: (app) => {
      // A transaction that waits, holding its connection, between BEGIN and COMMIT.
      app.post('/test/held-transaction', { config: { public: true } }, async (_request, reply) => {
        const client = await app.pg.pool.connect()
        let failure: Error | undefined
        try {
          await client.query('BEGIN')
          backendPid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number
          await new Promise<void>((resolve) => { proceed = resolve })
          await client.query('COMMIT')
        } catch (err) {
          failure = err as Error
          throw err
        } finally {
          client.release(failure)
        }
        return await reply.code(204).send()
      })
    }
  })
  const response = app.inject({ method: 'POST', url: '/test/held-transaction' })
  await waitUntil(() => backendPid !== 0, { what: 'the transaction to begin' })
  await app.pg.pool.query('SELECT pg_terminate_backend($1)', [backendPid])
  // Without an error listener on checked-out clients, this error event would be thrown: an uncaught exception.
  await waitUntil(() => app.logs.lines.some((l) => l.msg === 'database connection error'), { what: 'the connection error' })
  proceed()
  const res = await response
  t.equal(res.statusCode, 503)
  t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.ok(res.headers['retry-after'])
  t.match(res.json(), { status: 503, code: 'ROSTER_SERVICE_UNAVAILABLE' })
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'the pool serves new connections')
})

t.test('a transaction failing for its own reasons rolls back and gives its connection back, kept', async (t) => {
  const app = await build(t, { env: { DB_POOL_MAX: '1', MAIL_DISPATCHER: 'false' } })
  const backend = async (): Promise<number> => await transaction(app.db, async (tx) =>
    (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number)
  const before = await backend()
  await t.rejects(transaction(app.db, async (tx) => {
    await tx.query("INSERT INTO users (email) VALUES ('rolled-back@example.com')")
    throw new errors.Conflict('changed my mind')
  }), { code: 'ROSTER_CONFLICT' })
  t.equal(await backend(), before, 'the same connection serves the next transaction')
  t.same((await app.pg.pool.query('SELECT email FROM users')).rows, [], 'rolled back')
})

/**
 * A TCP proxy to PostgreSQL that can stop forwarding anything, as a network partition does (no RST, no FIN):
 * on `freeze`, or once a client has sent what `freezeAfter` matches (it is delivered, its answer is not).
 */
async function freezableProxy (t: TestContext, databaseUrl: string, freezeAfter?: RegExp): Promise<{ url: string, freeze: () => void, thaw: () => void }> {
  const target = new URL(databaseUrl)
  const sockets = new Set<net.Socket>()
  let frozen = false
  let trigger = freezeAfter
  const freeze = (): void => { frozen = true; for (const s of sockets) s.pause() }
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname)
    client.pipe(upstream).pipe(client)
    client.on('data', (chunk: Buffer) => {
      if (trigger?.test(chunk.toString('latin1')) === true) {
        trigger = undefined
        freeze()
      }
    })
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => { sockets.delete(s); client.destroy(); upstream.destroy() })
      if (frozen) s.pause()
    }
  })
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.after(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  const url = new URL(databaseUrl)
  url.port = String(port)
  return {
    url: url.href,
    freeze,
    thaw: () => { frozen = false; for (const s of sockets) s.resume() }
  }
}

t.test('a database that stops answering (a partition): requests fail with 503 within the timeouts, and work again after', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const proxy = await freezableProxy(t, databaseUrl)
  const app = await build(t, {
    databaseUrl: proxy.url,
    // query_timeout is DB_STATEMENT_TIMEOUT + 1 s: 1.2 s here.
    env: { DB_STATEMENT_TIMEOUT: '200', DB_CONNECTION_TIMEOUT: '500', MAIL_DISPATCHER: 'false' },
    extend: (app) => {
      app.post('/test/write', { config: { public: true } }, async (_request, reply) => {
        await transaction(app.db, async (tx) => { await tx.query('SELECT 1') })
        return await reply.code(204).send()
      })
    }
  })
  t.equal((await app.inject({ method: 'POST', url: '/test/write' })).statusCode, 204)
  proxy.freeze()
  const started = Date.now()
  const [write, ready] = await Promise.all([
    app.inject({ method: 'POST', url: '/test/write' }),
    app.inject({ url: '/health/ready' })
  ])
  const took = Date.now() - started
  t.equal(write.statusCode, 503, 'a write on a connection that no longer answers')
  t.match(write.json(), { code: 'ROSTER_SERVICE_UNAVAILABLE' })
  t.equal(ready.statusCode, 503, 'not ready')
  t.ok(took < 4000, `both answered within the timeouts (${took} ms), not left hanging`)
  proxy.thaw()
  await waitUntil(async () => (await app.inject({ method: 'POST', url: '/test/write' })).statusCode === 204, { what: 'writes to succeed again' })
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200)
  const { pool } = app.pg
  t.equal(pool.totalCount - pool.idleCount, 0, 'no client left checked out: a BEGIN that failed leaked none')
  // Closing waits for every checked-out client: a leaked one would hold it forever.
  await Promise.race([app.close(), sleep(5000).then(() => { throw new Error('the app did not close') })])
})

/** A started Listener on `url`, subscribed to `partition_test`: what it heard, and how many times it began to listen. */
function listening (url: string, opts: { connectionTimeout: number, heartbeat: number, log: FastifyBaseLogger }): { listener: Listener, heard: string[], connected: () => number } {
  const listener = new Listener({ connectionString: url, retryDelay: 50, ...opts })
  const heard: string[] = []
  let connections = 0
  listener.subscribe('partition_test', { notify: (payload) => { heard.push(payload) }, connected: () => { connections++ } })
  listener.start()
  return { listener, heard, connected: () => connections }
}

t.test('the LISTEN connection behind a partition: found lost by its heartbeat, reconnected after, its subscribers caught up; a stop does not wait for the partition', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const proxy = await freezableProxy(t, databaseUrl)
  const db = new pg.Pool({ connectionString: databaseUrl })
  t.after(async () => { await db.end() })
  const logs = new LogCapture()
  const log = pino(logs) as unknown as FastifyBaseLogger
  const { listener, heard, connected } = listening(proxy.url, { connectionTimeout: 300, heartbeat: 100, log })
  t.after(async () => { await listener.stop() })
  await waitUntil(() => connected() === 1, { what: 'the listener to connect' })
  await notify(db, 'partition_test', 'before')
  await waitUntil(() => heard.includes('before'), { what: 'the first notification' })

  proxy.freeze()
  const frozenAt = Date.now()
  await waitUntil(() => logs.lines.some((l) => l.msg === 'database listener lost: reconnecting'), { what: 'the loss to be found' })
  const found = Date.now() - frozenAt
  t.ok(found < 3000, `the silent connection found lost within the heartbeat and its answer's time (${found} ms), not the kernel's keep-alive's hours`)
  t.match(logs.lines.find((l) => l.msg === 'database listener lost: reconnecting'), { err: { message: 'the connection did not answer within 300 ms' } })
  await notify(db, 'partition_test', 'unheard')
  proxy.thaw()
  await waitUntil(() => connected() === 2, { what: 'the subscribers told to catch up, reconnected' })
  t.ok(logs.lines.some((l) => l.msg === 'database listener reconnected'))
  await notify(db, 'partition_test', 'after')
  await waitUntil(() => heard.includes('after'), { what: 'notifications heard again' })
  t.same(heard, ['before', 'after'], 'what was sent while nobody listened is the catching up\'s to find')

  // A stop during a partition, no check pending (its heartbeat is far off): the goodbye is never acknowledged.
  const quiet = listening(proxy.url, { connectionTimeout: 300, heartbeat: 60_000, log })
  await waitUntil(() => quiet.connected() === 1, { what: 'the second listener to connect' })
  proxy.freeze()
  const stopping = Date.now()
  await quiet.listener.stop()
  const stopped = Date.now() - stopping
  t.ok(stopped < 2000, `stopped within its connection timeout (${stopped} ms), the connection cut`)
  proxy.thaw()
})

t.test('the LISTEN connection going silent while it sets up (its LISTEN unanswered): lost within its connection timeout, not held', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const proxy = await freezableProxy(t, databaseUrl, /LISTEN partition_test/)
  const db = new pg.Pool({ connectionString: databaseUrl })
  t.after(async () => { await db.end() })
  const logs = new LogCapture()
  const { listener, heard, connected } = listening(proxy.url, { connectionTimeout: 300, heartbeat: 100, log: pino({ level: 'debug' }, logs) as unknown as FastifyBaseLogger })
  t.after(async () => { await listener.stop() })
  await waitUntil(() => logs.lines.some((l) => l.msg === 'database listener cannot connect'), { what: 'the unanswered LISTEN to be given up' })
  t.match(logs.lines.find((l) => l.msg === 'database listener cannot connect'), { err: { message: 'the connection did not answer within 300 ms' } })
  t.equal(connected(), 0, 'not listening yet')
  proxy.thaw()
  await waitUntil(() => connected() === 1, { what: 'a new connection to listen' })
  await notify(db, 'partition_test', 'heard')
  await waitUntil(() => heard.includes('heard'), { what: 'the notification' })
  t.notOk(logs.lines.some((l) => l.msg === 'database listener lost: reconnecting'), 'it never listened on the silent one')

  // A stop while the LISTEN waits for an answer that will not come: done at once.
  const again = await freezableProxy(t, databaseUrl, /LISTEN partition_test/)
  const held = listening(again.url, { connectionTimeout: 60_000, heartbeat: 60_000, log: pino({ level: 'silent' }) as unknown as FastifyBaseLogger })
  await sleep(500)
  const stopping = Date.now()
  await held.listener.stop()
  const stopped = Date.now() - stopping
  t.ok(stopped < 2000, `stopped at once (${stopped} ms), its LISTEN unanswered`)
  again.thaw()
})

t.test('database errors in the log: no bound values, no connection objects', async (t) => {
  const secret = 'bound-value-that-must-not-be-logged'
  const app = await build(t, {
    // Nothing in the background checks the terminated connection out (it would be logged as that job's error instead).
    env: { MAIL_DISPATCHER: 'false', WEBHOOK_DISPATCHER: 'false' },
    extend: (app) => {
      app.get('/test/failing-query', { config: { public: true } }, async () => {
        // drizzle runs only the migrations now (db/migrate.ts); its errors still must not leak their values.
        await drizzle({ client: app.db }).execute(sql`SELECT ${secret}::text AS s, 1 / 0 AS boom`)
      })
    }
  })
  const res = await app.inject({ url: '/test/failing-query' })
  t.equal(res.statusCode, 500)
  const failed = app.logs.lines.find((l) => l.msg === 'request failed') as { err: Record<string, string> }
  t.equal(failed.err.type, 'DrizzleQueryError')
  t.match(failed.err.message, /^Failed query: SELECT \$1::text AS s, 1 \/ 0 AS boom: division by zero$/)
  t.match(failed.err.stack, /^Error: Failed query: SELECT \$1::text AS s, 1 \/ 0 AS boom\n {4}at /)
  t.match(failed.err.stack, /caused by: error: division by zero/)
  t.notOk('params' in failed.err)
  t.notMatch(app.logs.text(), secret, 'the bound value is nowhere in the log')

  // An idle connection lost: node-postgres's pool puts the whole client on the error.
  const [client, other] = await Promise.all([app.pg.pool.connect(), app.pg.pool.connect()])
  const { rows: [row] } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
  client.release()
  await other.query('SELECT pg_terminate_backend($1)', [row?.pid])
  other.release()
  await waitUntil(() => app.logs.lines.some((l) => l.msg === 'idle database connection lost'), { what: 'the idle connection loss to be logged' })
  const lost = app.logs.lines.find((l) => l.msg === 'idle database connection lost') as { err: Record<string, unknown> }
  t.match(lost.err, { code: '57P01', message: 'terminating connection due to administrator command' })
  t.notOk('client' in lost.err, 'no connection object (internal state, cancel key) in the log')
})

t.test('the error serializer', async (t) => {
  t.equal(serializeError('not an error' as unknown as Error), 'not an error', 'anything else is left to pino')
  const query = Object.assign(new Error('Failed query: select $1\nparams: s3cret'), { query: 'select $1', params: ['s3cret'] })
  const wrapped = serializeError(new Error('outer', { cause: query }))
  t.match(wrapped, { message: 'outer: Failed query: select $1' })
  t.notMatch(JSON.stringify(wrapped), 's3cret', 'nor in a cause')
})
