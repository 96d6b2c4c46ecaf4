/**
 * Graceful drain of the real server process (src/server.ts), over real sockets.
 *
 * Requests are held in flight for real, without any test hook in the server:
 * readiness requests wait on a lock this test takes on the migrations table,
 * while keep-alive clients send mixed requests. Then SIGTERM. Every request the
 * server accepted (it logged "incoming request" for its id) must get its whole
 * answer; requests it never accepted may only fail to connect or find their
 * idle connection closed. DRAIN_LOAD_MS sets how long the load runs before the
 * signal (default 2 s; the acceptance run uses 30 s).
 */
import t from 'tap'
import { once } from 'node:events'
import { existsSync, mkdtempSync, chmodSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { createTestDatabase, waitUntil } from './helper.ts'
import { freePort } from '../db/embedded.ts'
import { jsonLines, spawnEntry } from './process.ts'

const LOAD_MS = Number(process.env.DRAIN_LOAD_MS ?? 2000)
const WORKERS = 16
const MAX_REQUESTS = 200_000

interface LogLine { reqId?: string, msg?: string, res?: { statusCode: number }, level: number, time: number }

/** The server as production runs it (tsx loader, as tap runs tests, so coverage follows it), its log lines parsed. */
function startServer (env: Record<string, string>) {
  const run = spawnEntry('src/server.ts', { NODE_ENV: 'test', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env })
  const lines = jsonLines<LogLine>(run.child.stdout)
  const exit = run.exit.then(({ code }) => code)
  const index = (pred: (l: LogLine) => boolean): number => lines.findIndex(pred)
  return { child: run.child, lines, exit, index, stderr: run.stderr }
}

interface Outcome { id: string, status?: number, connection?: string, error?: string }

function request (agent: http.Agent, port: number, id: string, method: string, path: string, body?: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { 'x-request-id': id }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
      res.resume()
      res.on('end', () => resolve({ id, status: res.statusCode as number, connection: res.headers.connection }))
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ id, error: err.code ?? err.message }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ id, error: err.code ?? err.message }))
    req.end(body)
  })
}

/** Reads pipelined HTTP/1.1 responses (all with Content-Length) off a raw socket. */
function rawResponses (socket: net.Socket): () => Array<{ status: number, headers: Record<string, string>, body: string }> {
  let buffer = ''
  socket.on('data', (d) => { buffer += String(d) })
  return () => {
    const out = []
    let rest = buffer
    for (;;) {
      const end = rest.indexOf('\r\n\r\n')
      if (end === -1) break
      const [statusLine, ...headerLines] = rest.slice(0, end).split('\r\n')
      const headers: Record<string, string> = {}
      for (const h of headerLines) headers[h.slice(0, h.indexOf(':')).toLowerCase()] = h.slice(h.indexOf(':') + 1).trim()
      const length = Number(headers['content-length'] ?? 0)
      if (rest.length < end + 4 + length) break
      out.push({ status: Number((statusLine as string).split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + length) })
      rest = rest.slice(end + 4 + length)
    }
    return out
  }
}

const readiness = (id: string): string => `GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: ${id}\r\n\r\n`

t.test('SIGTERM under load: readiness 503 at once, no accepted request cut, resources closed, exit 0', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'roster-drain-'))
  chmodSync(dataDir, 0o755)
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const [port, pgPort] = [await freePort(), await freePort()]
  // Embedded PostgreSQL, so that the drain has it to stop too; long statement timeout, so held queries wait.
  const server = startServer({ PORT: String(port), DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), DB_STATEMENT_TIMEOUT: '120000', SHUTDOWN_TIMEOUT: '30000', SHUTDOWN_DELAY: '1500' })
  t.teardown(() => { if (server.child.exitCode === null) server.child.kill('SIGKILL') })
  t.teardown(() => { if (!t.passing()) t.comment(JSON.stringify(server.lines.filter((l) => !/^load-/.test(l.reqId ?? '')), null, 1)) })
  await waitUntil(() => server.index((l) => /Roster is up/.test(l.msg ?? '')) !== -1 || server.child.exitCode !== null, { what: 'the server is up', timeout: 180_000 })
  t.equal(server.child.exitCode, null, server.stderr())

  // Mixed load over keep-alive connections, each request with an id of its own.
  const kinds: Array<[string, string, string?]> = [
    ['GET', '/'], ['GET', '/health/live'], ['GET', '/apidocs/json'], ['GET', '/metrics'],
    ['GET', '/no/such/route'], ['DELETE', '/'], ['HEAD', '/'], ['POST', '/health/live', '{"a":1}']
  ]
  const loadAgent = new http.Agent({ keepAlive: true, maxSockets: WORKERS })
  const outcomes: Outcome[] = []
  let sent = 0
  const load = { stop: false }
  const workers = Array.from({ length: WORKERS }, async (_, w) => {
    for (let i = 0; !load.stop && sent < MAX_REQUESTS; i++) {
      const [method, path, body] = kinds[(w + i) % kinds.length] as [string, string, string?]
      const outcome = await request(loadAgent, port, `load-${w}-${i}`, method, path, body)
      sent++
      outcomes.push(outcome)
      if (outcome.error === 'ECONNREFUSED') return // the listener is closed: the drain is under way
    }
  })

  // Load for a while first. A request is cut after REQUEST_TIMEOUT (30 s) anyway: hold the others just before the signal.
  await new Promise((resolve) => setTimeout(resolve, LOAD_MS))

  // Hold readiness requests in flight: their query waits on this lock until we let go.
  const locker = new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${pgPort}/roster` })
  await locker.connect()
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE drizzle.__drizzle_migrations IN ACCESS EXCLUSIVE MODE')

  const heldAgent = new http.Agent({ keepAlive: true, maxSockets: 3 })
  const held = [1, 2, 3].map((i) => request(heldAgent, port, `held-${i}`, 'GET', '/health/ready'))
  // One more on a raw socket, on which a second request will follow once the drain began.
  const raw = net.connect(port, '127.0.0.1')
  await once(raw, 'connect')
  const rawAnswers = rawResponses(raw)
  raw.write(readiness('held-raw'))

  const heldIds = ['held-1', 'held-2', 'held-3', 'held-raw']
  await waitUntil(() => heldIds.every((id) => server.index((l) => l.reqId === id && l.msg === 'incoming request') !== -1), { what: 'the held requests reached the server', timeout: 30_000 })
  // pg_stat_activity is read once per transaction unless told otherwise, and the locker is in one.
  const waiting = async (): Promise<number> => (await locker.query<{ n: number }>("SELECT pg_stat_clear_snapshot(), (SELECT count(*)::int FROM pg_stat_activity WHERE application_name = 'roster' AND wait_event_type = 'Lock') AS n")).rows[0]?.n as number
  await waitUntil(async () => await waiting() === 4, { what: 'four readiness queries wait on the lock: four requests in flight', timeout: 30_000 })

  t.ok(outcomes.length > 0, `${outcomes.length} requests answered before the signal`)
  server.child.kill('SIGTERM')
  await waitUntil(() => server.index((l) => l.msg === 'shutting down') !== -1, { what: 'shutting down', timeout: 30_000 })

  // A request arriving on a connection that is still open is served, and readiness says no at once.
  raw.write(readiness('after-sigterm'))
  await waitUntil(() => server.index((l) => l.reqId === 'after-sigterm' && l.msg === 'incoming request') !== -1, { what: 'the server received it', timeout: 30_000 })
  // During SHUTDOWN_DELAY the listener still accepts: a balancer polling readiness learns the 503 before any connection is refused.
  const early = await request(new http.Agent({ keepAlive: true }), port, 'pre-stop', 'GET', '/health/live')
  t.same(early, { id: 'pre-stop', status: 200, connection: 'keep-alive' }, 'a new connection during the delay: served as usual')
  t.ok(server.index((l) => /the listener closes after SHUTDOWN_DELAY/.test(l.msg ?? '')) !== -1, 'the delay is said in the log')
  // Then new connections are refused.
  await waitUntil(async () => await new Promise<boolean>((resolve) => {
    const probe = net.connect(port, '127.0.0.1')
    probe.on('connect', () => { probe.destroy(); resolve(false) })
    probe.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
  }), { what: 'the listener is closed', timeout: 30_000 })
  t.equal(server.child.exitCode, null, 'still draining: the held requests are not answered yet')
  // A request arriving now, on a connection still open, is served too (after the two before it).
  raw.write('GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: after-close\r\n\r\n')
  await waitUntil(() => server.index((l) => l.reqId === 'after-close' && l.msg === 'incoming request') !== -1, { what: 'the server received it', timeout: 30_000 })

  await locker.query('COMMIT')
  await locker.end()
  const code = await server.exit
  load.stop = true
  await Promise.all(workers)
  raw.destroy()

  t.equal(code, 0, `exit code 0 ${server.stderr()}`)
  for (const outcome of await Promise.all(held)) t.same(outcome, { id: outcome.id, status: 200, connection: 'close' }, `${outcome.id}: answered in full, and told to reconnect elsewhere`)
  const [first, second, third] = rawAnswers()
  t.equal(first?.status, 200, 'held-raw: answered in full')
  t.not(first?.headers.connection, 'close', 'not the last on its connection: it stays open')
  t.equal(second?.status, 503, 'readiness turned 503 as soon as the drain began')
  t.match(JSON.parse(second?.body ?? '{}'), { code: 'ROSTER_SERVICE_UNAVAILABLE', detail: /shutting down/ })
  t.equal(third?.status, 200, 'a request arriving on an open connection once the listener is closed: served')
  t.equal(third?.headers.connection, 'close', 'and the connection closes after it')

  // Every accepted request was answered in full, with the status the server logged.
  const incoming = new Set(server.lines.filter((l) => l.msg === 'incoming request').map((l) => l.reqId))
  const completed = new Map(server.lines.filter((l) => l.msg === 'request completed').map((l) => [l.reqId, l.res?.statusCode]))
  const accepted = outcomes.filter((o) => incoming.has(o.id))
  const cut = accepted.filter((o) => o.error !== undefined || o.status !== completed.get(o.id))
  t.same(cut, [], `${accepted.length} accepted load requests, none cut`)
  t.same(accepted.filter((o) => (o.status as number) >= 500), [], 'no 5xx')
  const refused = outcomes.filter((o) => !incoming.has(o.id))
  t.same(refused.filter((o) => !['ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(o.error as string)), [], `${refused.length} never accepted: only refused or found their idle connection closed`)

  // The order of events, from the server's own log.
  const shuttingDown = server.index((l) => l.msg === 'shutting down')
  for (const id of heldIds) {
    t.ok(server.index((l) => l.reqId === id && l.msg === 'incoming request') < shuttingDown, `${id} accepted before the signal`)
    t.ok(server.index((l) => l.reqId === id && l.msg === 'request completed') > shuttingDown, `${id} answered after it`)
  }
  // The last lines may reach the pipe out of order (pino flushes what is left synchronously at exit): compare their times.
  const time = (pred: (l: LogLine) => boolean): number => server.lines.find(pred)?.time ?? NaN
  const pgStopped = time((l) => l.msg === 'embedded PostgreSQL stopped')
  const drained = time((l) => /^drained/.test(l.msg ?? ''))
  t.ok(pgStopped >= Math.max(...heldIds.map((id) => time((l) => l.reqId === id && l.msg === 'request completed'))), 'the database stops after the last answer')
  t.ok(drained >= pgStopped, 'drained last')
  t.equal(server.lines.filter((l) => l.level >= 50).length, 0, 'nothing logged at error')
  t.notOk(existsSync(join(dataDir, 'postgres', 'postmaster.pid')), 'embedded PostgreSQL is stopped')
  const byError = new Map<string, number>()
  for (const o of refused) byError.set(o.error as string, (byError.get(o.error as string) ?? 0) + 1)
  const errors = [...byError].map(([k, n]) => `${k} ${n}`).join(', ')
  t.comment(`load: ${outcomes.length} requests, ${accepted.length} accepted and answered in full (${accepted.filter((o) => o.connection === 'close').length} during the drain), ${refused.length} never accepted (${errors})`)
  loadAgent.destroy()
  heldAgent.destroy()
})

t.test('a request that outlasts SHUTDOWN_TIMEOUT: the drain gives up and the process exits 1', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const port = await freePort()
  const server = startServer({ PORT: String(port), DATABASE_URL: databaseUrl, DB_STATEMENT_TIMEOUT: '120000', DB_CONNECTION_TIMEOUT: '60000', SHUTDOWN_TIMEOUT: '1000', SHUTDOWN_DELAY: '0' })
  t.teardown(() => { if (server.child.exitCode === null) server.child.kill('SIGKILL') })
  await waitUntil(() => server.index((l) => /Roster is up/.test(l.msg ?? '')) !== -1 || server.child.exitCode !== null, { what: 'the server is up', timeout: 180_000 })
  const agent = new http.Agent({ keepAlive: true })
  // A first readiness check opens the pool's connection: the stuck request then waits on the lock, not on a
  // connection that a loaded machine may take longer to open than the pool's connect timeout. (A background
  // job may hold that connection just then: the connect timeout is a minute, so a second one is waited for.)
  t.match(await request(agent, port, 'warm', 'GET', '/health/ready'), { status: 200 })
  const locker = new pg.Client({ connectionString: databaseUrl })
  await locker.connect()
  t.teardown(() => locker.end())
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE drizzle.__drizzle_migrations IN ACCESS EXCLUSIVE MODE')

  const stuck = request(agent, port, 'stuck', 'GET', '/health/ready')
  const waiting = async (): Promise<boolean> => (await locker.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rowCount === 1
  await waitUntil(waiting, { what: 'the request waits on the lock', timeout: 30_000 })
  server.child.kill('SIGTERM')
  t.equal(await server.exit, 1)
  t.ok(server.index((l) => /killed by timeout \(1000ms\)/.test(l.msg ?? '')) !== -1, 'says why')
  t.match(await stuck, { id: 'stuck', error: 'ECONNRESET' })
  await locker.query('ROLLBACK')
  agent.destroy()
})
