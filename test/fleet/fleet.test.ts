/**
 * The fleet acceptance test: three Roster processes (src/server.ts, as
 * production runs it) on one PostgreSQL, Debian's nginx in front with
 * deploy/nginx.conf, a real SMTP peer; once directly on PostgreSQL, once
 * through Debian's PgBouncer in transaction pooling. It shows that the three
 * behave as one service:
 * - they start together on an empty database and migrate it once;
 * - a token from any instance works on every other;
 * - a logout on one is refused on the others as soon as the notification
 *   arrives (well within SESSION_CACHE_TTL, which is 5 s here);
 * - the /auth limit is global: limit + 5 requests spread over the three get
 *   at least 5 refusals;
 * - 50 registrations spread over them produce exactly 50 emails, with links
 *   to PUBLIC_URL whichever instance took them;
 * - one Idempotency-Key replays across instances, also when sent to all three at once;
 * and, directly on PostgreSQL (the longer part):
 * - a rolling restart of each instance in turn under mixed keep-alive load
 *   through nginx: zero failed client requests;
 * - the pruning job keeps the tables flat under churn.
 * Figures go to the test's comments (`# ...`).
 */
import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, chmodSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { createTestDatabase, TEST_ENV, waitUntil, type Test } from '../helper.ts'
import { jsonLines, spawnCaptured } from '../process.ts'
import { smtpPeer, type SmtpPeer } from '../mail/peers.ts'
import { freePort } from '../../db/embedded.ts'
import { shippedMigrations } from '../../db/migrate.ts'
import { rootDir } from '../../src/infra/paths.ts'
import { startNginx, startPgBouncer } from './peers.ts'

const PASSWORD = 'a fleet of three instances'
const RATE_LIMIT = 30
/** Longer than any wait below for a logout to reach another instance: what refuses it there is the notification. */
const SESSION_CACHE_TTL = 5000

interface LogLine { msg?: string, level: number, reqId?: string, component?: string, [k: string]: unknown }

interface Instance {
  port: number
  lines: LogLine[]
  stderr: () => string
  exit: Promise<number | null>
  kill: (signal: NodeJS.Signals) => void
}

/**
 * src/server.ts with tsx, not with the loaders tap runs tests with: three of
 * those compiling the sources at once, under load, take a minute to start on
 * a small machine. Coverage comes from the other tests: these processes record
 * none (tap's process-info hook, inherited through NODE_OPTIONS, is told not
 * to), as tsx compiles the sources to other code than tap's loader does and
 * the report would merge V8's byte ranges of both as if they were one code.
 */
function spawnInstance (env: Record<string, string>): Instance {
  const run = spawnCaptured(['--import', 'tsx', join(rootDir, 'src', 'server.ts')], { env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0', ...env } })
  const lines = jsonLines<LogLine>(run.child.stdout)
  return { port: Number(env.PORT), lines, stderr: run.stderr, exit: run.exit.then(({ code }) => code), kill: (signal) => { run.child.kill(signal) } }
}

async function up (instance: Instance): Promise<void> {
  await waitUntil(() => instance.lines.some((l) => /^Roster is up/.test(l.msg ?? '')), { what: `the instance on port ${instance.port} to start (${instance.stderr()})`, timeout: 90_000 })
  await waitUntil(() => instance.lines.some((l) => l.msg === 'database listener connected'), { what: `the instance on port ${instance.port} to listen` })
}

interface Answer { status: number, headers: http.IncomingHttpHeaders, body: string }

/** One HTTP request on loopback; `from` picks the client address (127.x.y.z), `agent` a keep-alive pool. */
async function send (port: number, method: string, path: string, opts: { body?: unknown, headers?: Record<string, string>, from?: string, agent?: http.Agent } = {}): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers }
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body)
    if (payload !== undefined) headers['content-type'] = 'application/json'
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, localAddress: opts.from, agent: opts.agent ?? false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  })
}

const json = <T>(a: Answer): T => JSON.parse(a.body) as T
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
let addresses = 0
/** A client address of its own (127.1.0.0/16), so that per-IP limits count each caller apart. */
const address = (): string => { const n = ++addresses; return `127.1.${(n >> 8) & 255}.${n & 255}` }
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

interface Fleet {
  instances: Instance[]
  nginx: { port: number, errors: () => string }
  smtp: SmtpPeer
  direct: string
  env: (port: number) => Record<string, string>
  publicUrl: string
}

/** Three instances on one database (through PgBouncer with `pgbouncer`), nginx in front, an SMTP peer. */
async function startFleet (t: Test, opts: { pgbouncer: boolean }): Promise<Fleet> {
  const direct = await createTestDatabase(t)
  const database = new URL(direct).pathname.slice(1)
  const bouncer = opts.pgbouncer ? await startPgBouncer(t, direct, { poolSize: 10 }) : undefined
  const smtp = await smtpPeer(t)
  await smtp.start()
  const ports = [await freePort(), await freePort(), await freePort()]
  const nginx = await startNginx(t, ports.map((p) => `127.0.0.1:${p}`))
  const publicUrl = `http://127.0.0.1:${nginx.port}`
  const jwt = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  const dataDirs = ports.map(() => {
    const dir = mkdtempSync(join(tmpdir(), 'roster-fleet-'))
    chmodSync(dir, 0o755)
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    return dir
  })
  const env = (port: number): Record<string, string> => ({
    ...TEST_ENV,
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: dataDirs[ports.indexOf(port)] as string,
    DATABASE_URL: bouncer === undefined ? direct : bouncer.url(database),
    ...(bouncer === undefined ? {} : { DATABASE_LISTEN_URL: direct, DB_PREPARED_STATEMENTS: 'false' }),
    // What every instance must share.
    PUBLIC_URL: publicUrl,
    JWT_PRIVATE_KEY: jwt,
    TRUST_PROXY: '1',
    MAIL_HOST: '127.0.0.1',
    MAIL_PORT: String(smtp.port),
    MAIL_POLL_INTERVAL: '1000',
    AUTH_RATE_LIMIT: String(RATE_LIMIT),
    AUTH_RATE_WINDOW: '10',
    SESSION_CACHE_TTL: String(SESSION_CACHE_TTL),
    PRUNE_INTERVAL: '1000',
    SESSION_RETENTION_DAYS: '0',
    OUTBOX_RETENTION_DAYS: '0',
    LOCKOUT_WINDOW: '1',
    SHUTDOWN_DELAY: '5000',
    SHUTDOWN_TIMEOUT: '20000',
    // Three servers, nginx, PostgreSQL and the load share a small test machine: no load shedding here,
    // and a connection or a statement may take longer than the defaults (3 s, 5 s) there (a 503 seen twice
    // under load, a POST and a PATCH of the one user every worker changes: not what the rolling restart
    // checks, which is that no request is lost to a restart).
    PRESSURE_MAX_EVENT_LOOP_DELAY: '0',
    DB_CONNECTION_TIMEOUT: '15000',
    DB_STATEMENT_TIMEOUT: '30000'
  })
  // All three at once, on an empty database.
  const instances = ports.map((port) => spawnInstance(env(port)))
  t.teardown(() => { for (const i of instances) i.kill('SIGKILL') })
  await Promise.all(instances.map(up))
  return { instances, nginx, smtp, direct, env, publicUrl }
}

async function count (url: string, sql: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<{ n: number }>(sql)).rows[0]?.n as number
  } finally {
    await client.end()
  }
}

/** Registers an admin through instance `via`, confirms it with the emailed link through nginx; returns its email. */
async function confirmedAdmin (fleet: Fleet, via: Instance, email: string): Promise<string> {
  const reg = await send(via.port, 'POST', '/auth/register', { body: { email, name: email.split('@')[0]?.replace(/[^a-z0-9]/g, '').slice(0, 30), password: PASSWORD }, from: address() })
  if (reg.status !== 201) throw new Error(`register ${email}: ${reg.status} ${reg.body}`)
  await waitUntil(() => fleet.smtp.deliveries.some((d) => d.to.includes(email)), { what: `the email to ${email}`, timeout: 15_000 })
  const link = /https?:\/\/\S+token=[A-Za-z0-9_-]+/.exec(fleet.smtp.deliveries.find((d) => d.to.includes(email))?.mail.text ?? '')?.[0] as string
  const url = new URL(link)
  const confirm = await send(Number(url.port), 'GET', `${url.pathname}${url.search}`, { from: address() })
  if (confirm.status !== 200) throw new Error(`confirm ${email}: ${confirm.status} ${confirm.body}`)
  return email
}

async function login (port: number, email: string): Promise<{ access_token: string, refresh_token: string }> {
  const res = await send(port, 'POST', '/auth/login', { body: { email, password: PASSWORD }, from: address() })
  if (res.status !== 200) throw new Error(`login on ${port}: ${res.status} ${res.body}`)
  return json(res)
}

/** The functional checks, on either variant. */
async function oneService (t: Test, fleet: Fleet, label: string): Promise<{ email: string }> {
  const { instances } = fleet
  const [a, b, c] = instances as [Instance, Instance, Instance]

  t.equal(await count(fleet.direct, 'SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations'), shippedMigrations(), 'three instances started at once on an empty database: each migration applied once')
  for (const i of instances) t.same(i.lines.filter((l) => l.level >= 40 && l.component === 'keys'), [], `instance ${i.port}: nothing to say about the keys`)

  // An admin registered through A: the link in its email points to PUBLIC_URL (nginx), not to A.
  const email = await confirmedAdmin(fleet, a, `owner-${label}@example.com`)
  const link = fleet.smtp.deliveries.find((d) => d.to.includes(email))?.mail.text ?? ''
  t.match(link, new RegExp(`${fleet.publicUrl}/auth/confirm\\?token=`), 'the emailed link is PUBLIC_URL\'s, whichever instance sent it')

  // A token from any instance works on every other.
  const matrix: number[][] = []
  for (const from of instances) {
    const { access_token: token } = await login(from.port, email)
    matrix.push(await Promise.all(instances.map(async (on) => (await send(on.port, 'GET', '/auth/me', { headers: bearer(token) })).status)))
  }
  t.same(matrix, [[200, 200, 200], [200, 200, 200], [200, 200, 200]], 'each instance\'s token on each instance')

  // A logout on one is refused on the others once the notification arrived (bounded wait, well within SESSION_CACHE_TTL).
  const latencies: number[] = []
  for (const [on, other] of [[a, b], [b, c], [c, a], [a, c], [b, a], [c, b]] as Array<[Instance, Instance]>) {
    const { access_token: token } = await login(on.port, email)
    const checkedAt = performance.now()
    t.equal((await send(other.port, 'GET', '/auth/me', { headers: bearer(token) })).status, 200, 'live on the other instance (and cached there)')
    t.equal((await send(on.port, 'POST', '/auth/logout', { headers: bearer(token) })).status, 204)
    const loggedOut = performance.now()
    let refusedAt = 0
    await waitUntil(async () => {
      const status = (await send(other.port, 'GET', '/auth/me', { headers: bearer(token) })).status
      if (status === 401) refusedAt = performance.now()
      return status === 401
    }, { what: 'the other instance to refuse the logged-out token', timeout: 15_000, interval: 1 }).catch(() => {}) // asserted below
    // Refused by the notification: before the check the other instance cached could have ended.
    t.ok(refusedAt > 0 && refusedAt - checkedAt < SESSION_CACHE_TTL, `refused ${(refusedAt - checkedAt).toFixed(0)} ms after the other instance cached its check (its cache: ${SESSION_CACHE_TTL} ms)`)
    latencies.push(refusedAt - loggedOut)
  }
  t.comment(`${label}: logout on one instance refused on another after ${latencies.map((l) => l.toFixed(1)).join(', ')} ms (median ${median(latencies).toFixed(1)}, max ${Math.max(...latencies).toFixed(1)}; the session cache would hold it ${SESSION_CACHE_TTL} ms)`)

  // The /auth limit is global: limit + 5 requests from one address, spread over the three.
  const from = address()
  const statuses: number[] = []
  for (let i = 0; i < RATE_LIMIT + 5; i++) {
    statuses.push((await send((instances[i % 3] as Instance).port, 'POST', '/auth/password/forgot', { body: { email: 'nobody@example.com' }, from })).status)
  }
  const refused = statuses.filter((s) => s === 429).length
  t.ok(refused >= 5, `${RATE_LIMIT + 5} requests spread over three instances: ${refused} refused (429), ${statuses.filter((s) => s === 202).length} accepted`)
  t.comment(`${label}: rate limit ${RATE_LIMIT} per window, ${RATE_LIMIT + 5} requests over three instances: ${refused} refused`)

  // 50 registrations spread over the instances: exactly 50 emails.
  const started = performance.now()
  const registered = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
    const res = await send((instances[i % 3] as Instance).port, 'POST', '/auth/register', { body: { email: `reg-${label}-${i}@example.com`, name: `reg${label}${i}`, password: PASSWORD }, from: address() })
    return res.status
  }))
  t.same(registered, Array(50).fill(201), '50 registrations, 17/17/16 per instance')
  const ours = (): string[] => fleet.smtp.deliveries.flatMap((d) => d.to).filter((to) => to.startsWith(`reg-${label}-`))
  await waitUntil(() => ours().length >= 50, { what: '50 emails', timeout: 30_000 })
  const deliveredIn = performance.now() - started
  await new Promise((resolve) => setTimeout(resolve, 2500)) // more than two poll intervals: a duplicate would show
  t.equal(ours().length, 50, 'exactly 50 emails')
  t.equal(new Set(ours()).size, 50, 'one to each')
  const senders = instances.map((i) => i.lines.filter((l) => l.msg === 'email sent').length)
  t.comment(`${label}: 50 registrations over three instances: 50 emails in ${deliveredIn.toFixed(0)} ms, none twice (sent by the instances: ${senders.join(' / ')}, all emails so far)`)

  // One Idempotency-Key replays across instances, and when sent to all three at once.
  const { access_token: token } = await login(a.port, email)
  const key = { ...bearer(token), 'idempotency-key': `fleet-${label}-1` }
  const first = await send(a.port, 'POST', '/users', { headers: key, body: { email: `idem-${label}@example.com` } })
  t.equal(first.status, 201)
  for (const other of [b, c]) {
    const replay = await send(other.port, 'POST', '/users', { headers: key, body: { email: `idem-${label}@example.com` } })
    t.equal(replay.headers['idempotent-replayed'], 'true', `replayed by instance ${other.port}`)
    t.equal(replay.body, first.body, 'the first answer, byte for byte')
  }
  const race = { ...bearer(token), 'idempotency-key': `fleet-${label}-2` }
  const raced = await Promise.all(instances.map(async (i) => await send(i.port, 'POST', '/users', { headers: race, body: { email: `race-${label}@example.com` } })))
  t.same(raced.map((r) => r.status), [201, 201, 201], 'the same key at once on three instances')
  t.equal(new Set(raced.map((r) => r.body)).size, 1, 'one answer')
  t.equal(raced.filter((r) => r.headers['idempotent-replayed'] === 'true').length, 2, 'two of them replays')
  t.equal(await count(fleet.direct, `SELECT count(*)::int AS n FROM users WHERE email = 'race-${label}@example.com'`), 1, 'one user')
  return { email }
}

t.test('three instances on one PostgreSQL, nginx in front: one service', async (t) => {
  const fleet = await startFleet(t, { pgbouncer: false })
  const { email } = await oneService(t, fleet, 'direct')

  // A rolling restart of each instance in turn, under mixed keep-alive load through nginx.
  const { access_token: token } = await login(fleet.instances[0]?.port as number, email)
  const someone = json<{ id: string }>(await send(fleet.nginx.port, 'POST', '/users', { headers: bearer(token), body: { email: 'someone@example.com' } }))
  const WORKERS = 8
  const outcomes: Array<{ kind: string, status?: number, error?: string, body?: string }> = []
  const load = { stop: false }
  const workers = Array.from({ length: WORKERS }, async (_, w) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress: address() })
    let pair = await login(fleet.nginx.port, email)
    let refreshedAt = Date.now()
    const kinds: Array<[string, () => Promise<Answer>]> = [
      ['GET /users', async () => await send(fleet.nginx.port, 'GET', '/users?limit=5', { headers: bearer(pair.access_token), agent })],
      ['GET /users/:id', async () => await send(fleet.nginx.port, 'GET', `/users/${someone.id}`, { headers: bearer(pair.access_token), agent })],
      ['POST /users', async () => await send(fleet.nginx.port, 'POST', '/users', { headers: bearer(pair.access_token), body: { email: `load-${w}-${outcomes.length}-${Math.random()}@example.com` }, agent })],
      ['GET /health/live', async () => await send(fleet.nginx.port, 'GET', '/health/live', { agent })],
      ['GET /.well-known/jwks.json', async () => await send(fleet.nginx.port, 'GET', '/.well-known/jwks.json', { agent })],
      ['PATCH /users/:id', async () => await send(fleet.nginx.port, 'PATCH', `/users/${someone.id}`, { headers: bearer(pair.access_token), body: { name: `Load ${w}` }, agent })]
    ]
    for (let i = 0; !load.stop && i < 100_000; i++) {
      let kind = kinds[(w + i) % kinds.length] as [string, () => Promise<Answer>]
      // A refresh now and then (the /auth limit counts per client address: within it).
      if (Date.now() - refreshedAt > 3000) {
        refreshedAt = Date.now()
        kind = ['POST /auth/refresh', async () => await send(fleet.nginx.port, 'POST', '/auth/refresh', { body: { refresh_token: pair.refresh_token }, agent })]
      }
      try {
        const res = await kind[1]()
        // A wrong answer keeps what it said (its problem's detail names the cause), for the assertion below.
        outcomes.push({ kind: kind[0], status: res.status, ...([200, 201].includes(res.status) ? {} : { body: res.body.slice(0, 300) }) })
        if (kind[0] === 'POST /auth/refresh' && res.status === 200) pair = json(res)
      } catch (err) {
        outcomes.push({ kind: kind[0], error: (err as NodeJS.ErrnoException).code ?? (err as Error).message })
      }
    }
    agent.destroy()
  })
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const restarts: string[] = []
  /** Every instance that served the load, the stopped ones too: their logs explain a failed answer. */
  const served = [...fleet.instances]
  for (const [n, old] of fleet.instances.entries()) {
    const before = outcomes.length
    const signalled = performance.now()
    old.kill('SIGTERM')
    const code = await old.exit
    t.equal(code, 0, `instance ${n + 1} drained and exited 0 ${old.stderr()}`)
    const stopped = performance.now()
    const fresh = spawnInstance(fleet.env(old.port))
    t.teardown(() => { fresh.kill('SIGKILL') })
    await up(fresh)
    fleet.instances[n] = fresh
    served.push(fresh)
    restarts.push(`instance ${n + 1}: stopped in ${((stopped - signalled) / 1000).toFixed(1)} s, up again in ${((performance.now() - stopped) / 1000).toFixed(1)} s, ${outcomes.length - before} requests meanwhile`)
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  load.stop = true
  await Promise.all(workers)
  const failed = outcomes.filter((o) => o.error !== undefined || ![200, 201].includes(o.status as number))
  const byKind = new Map<string, number>()
  for (const o of outcomes) byKind.set(o.kind, (byKind.get(o.kind) ?? 0) + 1)
  // A failed answer with a request id is shown with what the instance that answered it logged about it (warn and above).
  const explained = failed.slice(0, 20).map((o) => {
    const id = /"requestId":"([^"]+)"/.exec(o.body ?? '')?.[1]
    const logged = served.flatMap((i) => i.lines.filter((l) => id !== undefined && l.reqId === id && l.level >= 40))
      .map((l) => ({ msg: l.msg, err: l.err === undefined ? undefined : { code: (l.err as { code?: unknown }).code, message: (l.err as { message?: unknown }).message } }))
    return logged.length === 0 ? o : { ...o, logged }
  })
  t.same(explained, [], `rolling restart under load: ${outcomes.length} requests through nginx, ${failed.length} failed`)
  t.ok(outcomes.filter((o) => o.kind === 'POST /users').length > 10 && outcomes.filter((o) => o.kind === 'PATCH /users/:id').length > 10, 'POSTs and PATCHes among them (which nginx never repeats)')
  t.comment(`rolling restart: ${outcomes.length} requests by ${WORKERS} keep-alive clients through nginx, ${failed.length} failed; ${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')}`)
  for (const r of restarts) t.comment(r)
  t.notMatch(fleet.nginx.errors(), /upstream prematurely closed|reset by peer while reading/, 'nginx never lost a request on a closing connection')

  // Pruning keeps the tables flat under churn: rounds of registrations, logins, refreshes, logouts and failed logins.
  const tables = ['sessions', 'refresh_tokens', 'account_tokens', 'email_outbox', 'login_throttle', 'rate_limit_hits']
  const sizes = async (): Promise<Record<string, number>> => Object.fromEntries(await Promise.all(tables.map(async (table) => [table, await count(fleet.direct, `SELECT count(*)::int AS n FROM ${table}`)])))
  /** Rows pruned so far per table, all instances together (their roster_pruned_rows_total). */
  const pruned = async (): Promise<Record<string, number>> => {
    const out: Record<string, number> = Object.fromEntries(tables.map((table) => [table, 0]))
    for (const i of fleet.instances) {
      for (const [, table, n] of (await send(i.port, 'GET', '/metrics')).body.matchAll(/^roster_pruned_rows_total\{table="(\w+)"\} (\d+)$/gm)) {
        if (table as string in out) out[table as string] = (out[table as string] as number) + Number(n)
      }
    }
    return out
  }
  const ROUNDS = 6
  const PER_ROUND = 5
  const prunedBefore = await pruned()
  const samples: Array<Record<string, number>> = [await sizes()]
  for (let round = 0; round < ROUNDS; round++) {
    await Promise.all(Array.from({ length: PER_ROUND }, async (_, i) => {
      const churner = await confirmedAdmin(fleet, fleet.instances[i % 3] as Instance, `churn-${round}-${i}@example.com`)
      const pair = await login(fleet.nginx.port, churner)
      const next = json<{ access_token: string }>(await send(fleet.nginx.port, 'POST', '/auth/refresh', { body: { refresh_token: pair.refresh_token }, from: address() }))
      await send(fleet.nginx.port, 'POST', '/auth/logout', { headers: bearer(next.access_token), from: address() })
      await send(fleet.nginx.port, 'POST', '/auth/login', { body: { email: `nobody-${round}-${i}@example.com`, password: 'wrong password here' }, from: address() })
    }))
    await new Promise((resolve) => setTimeout(resolve, 2000)) // pruning runs (every second on each instance)
    samples.push(await sizes())
  }
  const prunedAfter = await pruned()
  for (const table of tables) {
    const series = samples.map((s) => s[table] as number)
    const grown = (series.at(-1) as number) - (series[0] as number)
    const gone = (prunedAfter[table] as number) - (prunedBefore[table] as number)
    const made = grown + gone
    // Rate-limit rows live as long as their window (10 s), however long a round takes on this machine: judged by what outlived its window, below.
    if (table === 'rate_limit_hits') continue
    // Flat: what is left is at most what three rounds make, however many rounds ran.
    t.ok(grown <= Math.ceil(3 * made / ROUNDS), `${table}: ${series.join(' → ')} over ${ROUNDS} rounds; ${made} rows made, ${gone} pruned meanwhile: flat`)
  }
  t.ok((prunedAfter['rate_limit_hits'] as number) > (prunedBefore['rate_limit_hits'] as number), 'rate_limit_hits: windows that ended were pruned under churn')
  // No rate-limit window outlives its end by more than a few pruning runs (every second on each instance).
  await waitUntil(async () => await count(fleet.direct, "SELECT count(*)::int AS n FROM rate_limit_hits WHERE reset_at <= now() - interval '3 seconds'") === 0, { what: 'ended rate-limit windows pruned', timeout: 30_000 })
  t.comment(`churn (${ROUNDS} rounds of ${PER_ROUND} registrations, confirmations, logins, refreshes, logouts, failed logins): ${tables.map((table) => `${table} ${samples.map((s) => s[table]).join('→')} (${(prunedAfter[table] as number) - (prunedBefore[table] as number)} pruned)`).join('; ')}`)
})

t.test('the same three instances through PgBouncer (transaction pooling): one service', async (t) => {
  const fleet = await startFleet(t, { pgbouncer: true })
  await oneService(t, fleet, 'pgbouncer')
  for (const i of fleet.instances) {
    i.kill('SIGTERM')
    t.equal(await i.exit, 0, 'drained and exited 0')
  }
})
