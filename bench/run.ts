/**
 * `npm run bench [-- --quick] [--users N] [--rounds N] [--duration S] [--rest S]`
 *
 * Measures Roster (production build) against a bare Fastify + node-postgres
 * baseline doing the same essential work (bench/baseline.ts), both on one
 * embedded PostgreSQL with the same data, alternating A/B over several rounds
 * so that drift on a shared machine hits both alike. Load comes from
 * autocannon in a process of its own (bench/load.ts). Every figure that
 * matters is a ratio measured within the run, or a figure of Roster's own
 * process (its RSS idle and at the end, its CPU per login, the database
 * statements per login counted by PostgreSQL's pg_stat_statements). Prints
 * every target of the run with ok/MISSED, writes bench/results/latest.json,
 * and exits non-zero when any request failed (naming each wrong answer).
 *
 * `--only <text>` runs just the endpoints whose name contains the text ("login"
 * for the login row); `--profile` starts Roster with `--cpu-prof`, writing a
 * .cpuprofile per run to bench/results/profiles (open it in Chrome DevTools or
 * speedscope); `--heap-snapshot` writes a heap snapshot of Roster at the end
 * of the run there (where the memory after the run goes).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync, createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile, chmod, mkdir, readdir, stat } from 'node:fs/promises'
import { openSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { startEmbeddedPostgres, freePort, type EmbeddedServer } from '../db/embedded.ts'
import { runMigrations } from '../db/migrate.ts'
import { loadKeys } from '../src/sessions/keys.ts'
import { hashPassword } from '../src/infra/passwords.ts'
import { rootDir } from '../src/infra/paths.ts'
import type { LoadJob, LoadResult } from './load.ts'
import { startFlags } from './start-flags.ts'
import { cpuMs, postgresCpuMs, restMs, rssMb, SETTLE_MS } from './proc.ts'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    users: { type: 'string', default: '10000' },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string', default: '10' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'heap-snapshot': { type: 'boolean', default: false },
    rest: { type: 'string' }
  }
})
const quick = args.quick === true
const USERS = Number(args.users)
const ROUNDS = Number(args.rounds ?? (quick ? 1 : 3))
const DURATION = Number(args.duration ?? (quick ? 2 : 6))
const CONNECTIONS = Number(args.connections)
const selected = (name: string): boolean => args.only === undefined || name.toLowerCase().includes(args.only.toLowerCase())
const profileDir = join(rootDir, 'bench', 'results', 'profiles')
const ARGON2 = { memoryCost: 19456, timeCost: 2, parallelism: 1 }
const PASSWORD = 'bench password that is long enough'
/** When the idle instance's RSS is read again, at rest: 120 s after ready, 0 (not read) in a quick run. */
const REST_MS = restMs(args.rest ?? (quick ? '0' : '120'))

/**
 * The targets (issue 18). Throughput: Roster's req/s over the baseline's, no worse than the lowest
 * ratio of the runs before it; search at least the baseline. Latency: Roster's p99 at half its
 * rate at most 1.2 times the baseline's p99 at that same rate. Memory in MB. Login: Roster's CPU per
 * login over one argon2 verification's, and the statements (round trips) a login sends PostgreSQL.
 */
const TARGETS = {
  ratio: { 'GET /users/{id}': 1.31, 'GET /users?limit=50': 1.06, 'GET /users?q=…': 1.0, 'POST /users': 1.57, 'PATCH /users/{id}': 1.59, 'POST /auth/refresh': 1.21 } as Record<string, number>,
  halfRateP99: 1.2,
  idleRssMb: 90,
  endRssMb: 160,
  loginCpu: 1.1,
  statementsPerLogin: 1
}

const log = (line: string): void => { process.stderr.write(`${line}\n`) }
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

const children: ChildProcess[] = []
function startProcess (args: string[], env: Record<string, string>, logFile: string): ChildProcess {
  const out = openSync(logFile, 'a')
  const child = spawn(process.execPath, args, { cwd: rootDir, env: { ...process.env, ...env }, stdio: ['ignore', out, out] })
  children.push(child)
  return child
}
async function stopProcess (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM') })
}

async function waitFor (url: string, ok = (status: number) => status < 500): Promise<void> {
  const deadline = Date.now() + 120_000
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url)
      await res.arrayBuffer()
      if (ok(res.status)) return
    } catch { /* not up yet */ }
    await sleep(200)
  }
  throw new Error(`${url} did not come up`)
}

async function load (job: LoadJob): Promise<LoadResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(rootDir, 'bench', 'load.ts'), JSON.stringify(job)], { cwd: rootDir, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => { out += String(d) })
    child.on('exit', (code) => { code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load exited ${String(code)}`)) })
  })
}

// ---------------------------------------------------------------- setup
log(`roster bench: ${quick ? 'quick' : 'full'} run, ${USERS} users, ${ROUNDS} rounds of ${DURATION}s, ${CONNECTIONS} connections`)
log('building the production bundle…')
const build = spawnSync('npm', ['run', 'build'], { cwd: rootDir, stdio: 'ignore' })
if (build.status !== 0) throw new Error('npm run build failed')

await mkdir(join(rootDir, 'bench', 'results'), { recursive: true })
const work = await mkdtemp(join(tmpdir(), 'roster-bench-'))
await chmod(work, 0o755)
/** What cleanup() stops, once it exists. */
const running: { postgres?: EmbeddedServer, pool?: pg.Pool } = {}

async function cleanup (): Promise<void> {
  // Wait for the servers to exit (a --cpu-prof profile is written at exit), for at most 10 s.
  await Promise.race([Promise.all(children.map(stopProcess)), sleep(10_000)])
  await running.pool?.end().catch(() => {})
  await running.postgres?.stop()
  await rm(work, { recursive: true, force: true })
}
process.on('SIGINT', () => { cleanup().then(() => process.exit(130), () => process.exit(130)) })

// Idle RSS as a user meets it: `npm start` with no settings at all (an embedded PostgreSQL under
// DATA_DIR, mail to the log, metrics on), read SETTLE_MS after it is ready (just started) and
// REST_MS after (at rest, the target's figure); it idles on while the bench's data is loaded.
log('idle RSS with default settings…')
const idlePort = await freePort()
const idle = startProcess([...startFlags(), join(rootDir, 'dist', 'src', 'server.js')], { DATA_DIR: join(work, 'default'), PORT: String(idlePort), HOST: '127.0.0.1' },
  join(rootDir, 'bench', 'results', 'roster-default.log'))
await waitFor(`http://127.0.0.1:${idlePort}/health/ready`, (status) => status === 200)
const idleReadyAt = Date.now()
await sleep(SETTLE_MS)
const startedRss = await rssMb(idle.pid as number)
log(`  ${startedRss.toFixed(1)} MB ${SETTLE_MS / 1000} s after ready`)
if (REST_MS === 0) await stopProcess(idle)

const server = await startEmbeddedPostgres(join(work, 'pg'), { database: 'bench' })
running.postgres = server
// pg_stat_statements counts the statements a login sends (tracking is switched on for the login runs only).
const setup = new pg.Client({ connectionString: server.url })
await setup.connect()
await setup.query("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
await setup.query("ALTER SYSTEM SET pg_stat_statements.track = 'none'")
await setup.end()
await server.stop()
await server.start()
const db = new pg.Pool({ connectionString: server.url, max: 4 })
running.pool = db
await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')

await runMigrations(db)
log(`loading ${USERS} users…`)
const { rows: [admin] } = await db.query<{ id: string }>(
  'INSERT INTO admins (email, name, password_hash, confirmed_at, role) VALUES ($1, $2, $3, now(), \'owner\') RETURNING id',
  ['bench@example.com', 'bench', await hashPassword(PASSWORD, ARGON2)]
)
const adminId = (admin as { id: string }).id
await db.query(
  `INSERT INTO users (email, name, created_by, created_at)
   SELECT 'user' || i || '@example.com', 'User ' || md5(i::text), $2, now() - (i || ' seconds')::interval
   FROM generate_series(1, $1) AS i`, [USERS, adminId])
await db.query('ANALYZE')
const { rows: [someUser] } = await db.query<{ id: string }>('SELECT id FROM users ORDER BY created_at LIMIT 1 OFFSET $1', [Math.floor(USERS / 2)])
const userId = (someUser as { id: string }).id

await sleep(idleReadyAt + REST_MS - Date.now())
const idleRss = REST_MS === 0 ? Number.NaN : await rssMb(idle.pid as number)
/** When the at-rest reading was made (later than REST_MS when loading the data took longer). */
const restSeconds = (Date.now() - idleReadyAt) / 1000
await stopProcess(idle)
if (REST_MS > 0) log(`  idle RSS at rest (${restSeconds.toFixed(0)} s after ready): ${idleRss.toFixed(1)} MB`)

const { privateKey } = generateKeyPairSync('ed25519')
const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
const keys = loadKeys({ privateKey: privatePem, previousPublicKeys: '', production: true, dataDir: work })
const issuer = 'http://bench.invalid'

const rosterPort = await freePort()
const basePort = await freePort()
// In production /metrics is served on a port of its own only.
const metricsPort = await freePort()
if (args.profile === true || args['heap-snapshot'] === true) await mkdir(profileDir, { recursive: true })
const rosterProcess = startProcess([
  ...(args.profile === true ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
  ...(args['heap-snapshot'] === true ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${profileDir}`] : []),
  ...startFlags(),
  join(rootDir, 'dist', 'src', 'server.js')
], {
  NODE_ENV: 'production',
  HOST: '127.0.0.1',
  PORT: String(rosterPort),
  DATABASE_URL: server.url,
  LOG_LEVEL: 'warn',
  PUBLIC_URL: issuer,
  SHUTDOWN_DELAY: '0',
  JWT_PRIVATE_KEY: privatePem,
  SECRET_KEY: randomBytes(32).toString('base64url'),
  AUTH_RATE_LIMIT: '100000000',
  LOCKOUT_THRESHOLD: '1000',
  MIGRATE_ON_START: 'false',
  REGISTRATION: 'closed',
  METRICS_ENABLED: 'true',
  METRICS_PORT: String(metricsPort)
}, join(rootDir, 'bench', 'results', 'roster.log'))
const rosterPid = rosterProcess.pid as number
const baselinePid = startProcess(['--import', 'tsx', join(rootDir, 'bench', 'baseline.ts')], {
  PORT: String(basePort),
  DATABASE_URL: server.url,
  JWT_PUBLIC_KEY: keys.verifying[0]?.pem as string,
  JWT_PRIVATE_KEY: privatePem,
  JWT_KID: keys.kid,
  JWT_ISSUER: issuer,
  JWT_AUDIENCE: 'roster'
}, join(rootDir, 'bench', 'results', 'baseline.log')).pid as number
const A = `http://127.0.0.1:${rosterPort}`
const B = `http://127.0.0.1:${basePort}`
await waitFor(`${A}/health/ready`, (status) => status === 200)
await waitFor(`${B}/users`)
await sleep(SETTLE_MS)
const benchIdleRss = await rssMb(rosterPid)

const loginRes = await fetch(`${A}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'bench@example.com', password: PASSWORD }) })
if (loginRes.status !== 200) throw new Error(`login failed: ${loginRes.status} ${await loginRes.text()}`)
const { access_token: accessToken } = await loginRes.json() as { access_token: string }
const auth = { authorization: `Bearer ${accessToken}` }

/** Sessions with fresh refresh tokens (one use each), written straight to the database. */
async function refreshTokenFile (count: number): Promise<string> {
  const tokens = Array.from({ length: count }, () => randomBytes(32).toString('base64url'))
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO sessions (admin_id, idle_expires_at, expires_at)
     SELECT $1, now() + interval '7 days', now() + interval '30 days' FROM generate_series(1, $2) RETURNING id`, [adminId, count])
  await db.query('INSERT INTO refresh_tokens (token_hash, session_id) SELECT * FROM unnest($1::text[], $2::uuid[])',
    [tokens.map((t) => createHash('sha256').update(t).digest('base64url')), rows.map((r) => r.id)])
  const file = join(work, `refresh-${randomBytes(4).toString('hex')}.txt`)
  await writeFile(file, tokens.join('\n'))
  return file
}

// ---------------------------------------------------------------- runs
interface Endpoint { name: string, method: LoadJob['method'], path: string, body?: string, refresh?: boolean, expect: number[] }
const endpoints: Endpoint[] = [
  { name: 'GET /users/{id}', method: 'GET', path: `/users/${userId}`, expect: [200] },
  { name: 'GET /users?limit=50', method: 'GET', path: '/users?limit=50', expect: [200] },
  { name: 'GET /users?q=…', method: 'GET', path: '/users?q=user12&limit=50', expect: [200] },
  { name: 'POST /users', method: 'POST', path: '/users', body: '{"email":"new-[<id>]@example.com","name":"New user"}', expect: [201] },
  { name: 'PATCH /users/{id}', method: 'PATCH', path: `/users/${userId}`, body: '{"name":"Renamed [<id>]"}', expect: [200] },
  { name: 'POST /auth/refresh', method: 'POST', path: '/auth/refresh', refresh: true, expect: [200] }
]

interface Row { endpoint: string, roster: LoadResult[], baseline: LoadResult[], ratio: number, halfRate?: LoadResult, baselineHalfRate?: LoadResult }
const rows: Row[] = []
/** Every load run with where it went, for the failure accounting. */
const runs: Array<{ what: string, result: LoadResult }> = []
/** The fastest refresh rate seen so far: sizes the next run's supply of refresh tokens. */
let refreshRate = 2000

async function job (base: string, e: Endpoint, rate = 0): Promise<LoadJob> {
  // Refresh tokens are used once each: twice what the run should need (at least 2,000 a second
  // at full speed), so the supply does not run out; if it does all the same, the run ends early
  // and says so (bench/load.ts never sends a token twice).
  const tokens = Math.ceil(2 * (rate > 0 ? rate : Math.max(refreshRate, 2000)) * DURATION) + 10 * CONNECTIONS
  return {
    url: `${base}${e.path}`,
    method: e.method,
    headers: e.refresh === true ? {} : auth,
    body: e.body,
    refreshTokensFile: e.refresh === true ? await refreshTokenFile(tokens) : undefined,
    connections: CONNECTIONS,
    duration: DURATION,
    rate,
    expect: e.expect
  }
}
/**
 * CPU per answered request (µs) of the server under load and of PostgreSQL's processes: what each
 * request costs, which the machine's sharing distorts less than a rate (on 2 cores the server,
 * PostgreSQL and the load generator compete, so a rate also measures the others).
 */
const cpuPerRequest = new Map<LoadResult, { server: number, postgres: number }>()
async function measured (what: string, loadJob: LoadJob): Promise<LoadResult> {
  const pid = loadJob.url.startsWith(A) ? rosterPid : baselinePid
  const [server0, pg0] = [await cpuMs(pid), await postgresCpuMs(join(work, 'pg'))]
  const result = await load(loadJob)
  const [server1, pg1] = [await cpuMs(pid), await postgresCpuMs(join(work, 'pg'))]
  let pg = 0
  for (const [backend, ms] of pg1) pg += ms - (pg0.get(backend) ?? 0)
  const answered = Math.max(1, result.requests)
  cpuPerRequest.set(result, { server: 1000 * (server1 - server0) / answered, postgres: 1000 * pg / answered })
  runs.push({ what, result })
  if (loadJob.refreshTokensFile !== undefined) refreshRate = Math.max(refreshRate, result.rps)
  return result
}

for (const e of endpoints.filter((x) => selected(x.name))) {
  const row: Row = { endpoint: e.name, roster: [], baseline: [], ratio: 0 }
  const ratios: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which server goes first, so warm-up and drift do not favour one.
    const order = r % 2 === 0 ? ['A', 'B'] : ['B', 'A']
    const got: Record<string, LoadResult> = {}
    for (const which of order) {
      got[which] = await measured(`${e.name}, round ${r + 1}, ${which === 'A' ? 'roster' : 'baseline'}`, await job(which === 'A' ? A : B, e))
      await sleep(300)
    }
    row.roster.push(got.A as LoadResult)
    row.baseline.push(got.B as LoadResult)
    ratios.push((got.A as LoadResult).rps / (got.B as LoadResult).rps)
    log(`${e.name} round ${r + 1}: roster ${(got.A as LoadResult).rps.toFixed(0)}/s, baseline ${(got.B as LoadResult).rps.toFixed(0)}/s`)
  }
  row.ratio = median(ratios)
  // Latency at half of the measured maximum rate.
  const half = Math.max(1, Math.floor(median(row.roster.map((x) => x.rps)) / 2))
  row.halfRate = await measured(`${e.name}, half rate, roster`, await job(A, e, half))
  // The baseline at the same rate: the latency floor of this machine and database.
  row.baselineHalfRate = await measured(`${e.name}, half rate, baseline`, await job(B, e, half))
  rows.push(row)
}

// Login: Roster's CPU time per login (its process, every thread) against the CPU time of one raw
// argon2id verification at the same cost (bench/argon2-rate.ts), each measured in the same run;
// and the statements PostgreSQL received per login, counted by pg_stat_statements. A login is a
// session the server created (counted in the database, after the requests still in flight when
// the load stopped have finished), so work on requests the load generator gave up on counts too.
const loginRuns: LoadResult[] = []
const loginCpuMs: number[] = []
/** The main thread's share: the JavaScript of a login (argon2 runs in libuv's thread pool). */
const loginMainCpuMs: number[] = []
const argonRuns: Array<{ rate: number, cpuMsPerVerify: number }> = []
let loginStatements: Array<{ query: string, calls: number, background: boolean }> = []
let logins = 0
const sessionCount = async (): Promise<number> => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM sessions WHERE admin_id = $1', [adminId])).rows[0]?.n)
/** The session count once it stopped changing (the logins still in flight are done). */
async function settledSessionCount (): Promise<number> {
  let last = await sessionCount()
  for (let i = 0; i < 50; i++) {
    await sleep(300)
    const now = await sessionCount()
    if (now === last) return now
    last = now
  }
  return last
}
/** Statements of the outbox's and the webhooks' dispatchers, which poll in the background whatever the requests, and the LISTEN connection's check (`SELECT 1`, every 30 s). */
const BACKGROUND = /email_outbox|webhook_deliveries|^SELECT \$1$/
if (selected('POST /auth/login')) {
  await db.query("ALTER SYSTEM SET pg_stat_statements.track = 'top'")
  await db.query('SELECT pg_reload_conf()')
  await sleep(500)
  await db.query('SELECT pg_stat_statements_reset()')
  for (let r = 0; r < ROUNDS; r++) {
    const sessionsBefore = await sessionCount()
    const cpuBefore = await cpuMs(rosterPid)
    const mainBefore = await cpuMs(rosterPid, rosterPid)
    const run = await measured(`POST /auth/login, round ${r + 1}, roster`, { url: `${A}/auth/login`, method: 'POST', body: JSON.stringify({ email: 'bench@example.com', password: PASSWORD }), connections: CONNECTIONS, duration: DURATION, expect: [200] })
    const served = await settledSessionCount() - sessionsBefore
    loginCpuMs.push((await cpuMs(rosterPid) - cpuBefore) / Math.max(1, served))
    loginMainCpuMs.push((await cpuMs(rosterPid, rosterPid) - mainBefore) / Math.max(1, served))
    logins += served
    loginRuns.push(run)
    const argon = spawnSync(process.execPath, ['--import', 'tsx', join(rootDir, 'bench', 'argon2-rate.ts'), String(DURATION)], { cwd: rootDir, encoding: 'utf8' })
    argonRuns.push(JSON.parse(argon.stdout) as { rate: number, cpuMsPerVerify: number })
    log(`login round ${r + 1}: ${run.rps.toFixed(1)}/s, ${(loginCpuMs.at(-1) as number).toFixed(2)} ms CPU per login; raw argon2 verify ${(argonRuns.at(-1)?.rate as number).toFixed(1)}/s, ${(argonRuns.at(-1)?.cpuMsPerVerify as number).toFixed(2)} ms CPU each`)
  }
  const { rows: statements } = await db.query<{ query: string, calls: string }>(
    `SELECT query, calls FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND query !~* '(pg_stat_statements|pg_reload_conf|ALTER SYSTEM|FROM sessions WHERE admin_id = \\$1$)'
      ORDER BY calls DESC`)
  loginStatements = statements.map((s) => ({ query: s.query.replace(/\s+/g, ' ').slice(0, 100), calls: Number(s.calls), background: BACKGROUND.test(s.query) }))
  await db.query("ALTER SYSTEM SET pg_stat_statements.track = 'none'")
  await db.query('SELECT pg_reload_conf()')
}
const statementsPerLogin = loginStatements.filter((s) => !s.background).reduce((n, s) => n + s.calls, 0) / Math.max(1, logins)
const loginCpu = median(loginCpuMs)
const argonCpu = median(argonRuns.map((a) => a.cpuMsPerVerify))
const loginCpuRatio = loginCpu / argonCpu

const endRss = await rssMb(rosterPid)
const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
if (args['heap-snapshot'] === true) {
  const before = new Set(await readdir(profileDir))
  process.kill(rosterPid, 'SIGUSR2')
  const deadline = Date.now() + 120_000
  let written: string | undefined
  while (written === undefined && Date.now() < deadline) {
    await sleep(1000)
    // Written once the file stops growing.
    const fresh = (await readdir(profileDir)).find((f) => f.endsWith('.heapsnapshot') && !before.has(f))
    if (fresh !== undefined) {
      const size = (await stat(join(profileDir, fresh))).size
      await sleep(1000)
      if ((await stat(join(profileDir, fresh))).size === size && size > 0) written = fresh
    }
  }
  log(written === undefined ? 'no heap snapshot was written' : `heap snapshot: bench/results/profiles/${written}`)
}
const metric = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(metrics)?.[1] ?? NaN) / 1024 / 1024

// ---------------------------------------------------------------- report
const failed = (r: LoadResult): number => r.errors + r.timeouts + r.wrong.reduce((n, w) => n + w.count, 0)
const failures = runs.reduce((n, r) => n + failed(r.result), 0)
const fmt = (n: number, d = 0): string => n.toFixed(d)
const check = (ok: boolean): string => ok ? 'ok' : 'MISSED'
const p99Ratio = (r: Row): number => (r.halfRate as LoadResult).p99 / (r.baselineHalfRate as LoadResult).p99
const table = [
  ['endpoint', 'roster req/s', 'p50 ms', 'p99 ms', 'baseline req/s', 'ratio', 'target', 'p99 @ half rate (roster / baseline ms)', 'target', 'failed'],
  ...rows.map((r) => {
    const target = TARGETS.ratio[r.endpoint] as number
    return [
      r.endpoint,
      fmt(median(r.roster.map((x) => x.rps))),
      fmt(median(r.roster.map((x) => x.p50)), 1),
      fmt(median(r.roster.map((x) => x.p99)), 1),
      fmt(median(r.baseline.map((x) => x.rps))),
      fmt(r.ratio, 2),
      `>= ${target} ${check(r.ratio >= target)}`,
      `${fmt((r.halfRate as LoadResult).p99, 1)} / ${fmt((r.baselineHalfRate as LoadResult).p99, 1)} = ${fmt(p99Ratio(r), 2)}`,
      `<= ${TARGETS.halfRateP99} ${check(p99Ratio(r) <= TARGETS.halfRateP99)}`,
      String([...r.roster, ...r.baseline, r.halfRate as LoadResult, r.baselineHalfRate as LoadResult].reduce((n, x) => n + failed(x), 0))
    ]
  })
]
const widths = (table[0] as string[]).map((_, i) => Math.max(...table.map((row) => (row[i] as string).length)))
for (const row of table) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i] as number)).join('  ')}\n`)
const cpuOf = (runs: LoadResult[], part: 'server' | 'postgres'): string => fmt(median(runs.map((x) => cpuPerRequest.get(x)?.[part] ?? NaN)))
process.stdout.write('\nCPU per request at full rate, µs (median of the rounds): server + PostgreSQL, Roster / baseline\n')
for (const r of rows) process.stdout.write(`  ${r.endpoint.padEnd(22)} Roster ${cpuOf(r.roster, 'server')} + ${cpuOf(r.roster, 'postgres')}   baseline ${cpuOf(r.baseline, 'server')} + ${cpuOf(r.baseline, 'postgres')}\n`)

const lines: string[] = ['']
if (loginRuns.length > 0) {
  lines.push(
    `POST /auth/login: ${fmt(median(loginRuns.map((x) => x.rps)), 1)}/s (p50 ${fmt(median(loginRuns.map((x) => x.p50)), 1)} ms, p99 ${fmt(median(loginRuns.map((x) => x.p99)), 1)} ms); raw argon2 ${fmt(median(argonRuns.map((a) => a.rate)), 1)} verifications/s`,
    `  CPU per login: ${fmt(loginCpu, 2)} ms against ${fmt(argonCpu, 2)} ms per argon2 verification = ${fmt(loginCpuRatio, 2)} (target <= ${TARGETS.loginCpu}) ${check(loginCpuRatio <= TARGETS.loginCpu)}; of it on the main thread (the login's JavaScript, GC aside): ${fmt(median(loginMainCpuMs), 2)} ms`,
    `  database statements (round trips) per login: ${fmt(statementsPerLogin, 2)} (target ${TARGETS.statementsPerLogin}) ${check(statementsPerLogin <= TARGETS.statementsPerLogin + 0.05)}; ${logins} logins, by statement:`,
    ...loginStatements.slice(0, 8).map((s) => `    ${fmt(s.calls / Math.max(1, logins), 2)}  ${s.background ? '(background, not counted) ' : ''}${s.query}`)
  )
}
lines.push(
  REST_MS === 0
    ? `idle RSS, default settings (embedded PostgreSQL): ${fmt(startedRss, 1)} MB ${SETTLE_MS / 1000} s after ready (not read at rest: --rest 0, a quick run's default)`
    : `idle RSS, default settings (embedded PostgreSQL), at rest (${fmt(restSeconds)} s after ready): ${fmt(idleRss, 1)} MB (target <= ${TARGETS.idleRssMb}) ${check(idleRss <= TARGETS.idleRssMb)}; ${fmt(startedRss, 1)} MB ${SETTLE_MS / 1000} s after ready`,
  `idle RSS, the bench's instance before load: ${fmt(benchIdleRss, 1)} MB`,
  `RSS at the end of the run: ${fmt(endRss, 1)} MB (target <= ${TARGETS.endRssMb}) ${check(endRss <= TARGETS.endRssMb)}; V8 heap ${fmt(metric('nodejs_heap_size_used_bytes'), 1)} MB used of ${fmt(metric('nodejs_heap_size_total_bytes'), 1)} MB`,
  `failed requests: ${failures}`
)
// Each wrong answer by run, status and problem code, with one body: exactly what the server got wrong.
for (const { what, result } of runs) {
  if (result.errors > 0 || result.timeouts > 0) lines.push(`  ${what}: ${result.errors} connection errors, ${result.timeouts} timeouts`)
  for (const w of result.wrong) lines.push(`  ${what}: ${w.count} × ${w.status} ${w.code}: ${w.sample}`)
  if (result.tokensRanOut) lines.push(`  ${what}: the refresh tokens ran out after ${fmt(result.seconds, 1)} s; the run was cut short there (not a failure)`)
}
process.stdout.write(`${lines.join('\n')}\n`)

await writeFile(join(rootDir, 'bench', 'results', 'latest.json'), `${JSON.stringify({
  date: new Date().toISOString(),
  mode: quick ? 'quick' : 'full',
  users: USERS,
  rounds: ROUNDS,
  duration: DURATION,
  connections: CONNECTIONS,
  targets: TARGETS,
  endpoints: rows.map((r) => ({
    endpoint: r.endpoint,
    rosterRps: median(r.roster.map((x) => x.rps)),
    baselineRps: median(r.baseline.map((x) => x.rps)),
    ratio: r.ratio,
    p50: median(r.roster.map((x) => x.p50)),
    p99: median(r.roster.map((x) => x.p99)),
    halfRateP99: (r.halfRate as LoadResult).p99,
    baselineHalfRateP99: (r.baselineHalfRate as LoadResult).p99,
    halfRateP99Ratio: p99Ratio(r),
    runs: { roster: r.roster, baseline: r.baseline, halfRate: r.halfRate, baselineHalfRate: r.baselineHalfRate }
  })),
  login: loginRuns.length === 0
    ? null
    : { rps: median(loginRuns.map((x) => x.rps)), cpuMsPerLogin: loginCpu, mainThreadCpuMsPerLogin: median(loginMainCpuMs), argon2CpuMsPerVerify: argonCpu, cpuRatio: loginCpuRatio, argon2VerifyRate: median(argonRuns.map((a) => a.rate)), statementsPerLogin, logins, statements: loginStatements, runs: loginRuns },
  idleRssMb: idleRss,
  startedRssMb: startedRss,
  benchIdleRssMb: benchIdleRss,
  rssMb: endRss,
  heapUsedMb: metric('nodejs_heap_size_used_bytes'),
  heapTotalMb: metric('nodejs_heap_size_total_bytes'),
  failures
}, null, 2)}\n`)

await cleanup()
process.exit(failures > 0 ? 1 : 0)
