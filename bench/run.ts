/**
 * `npm run bench [-- --quick] [--users N] [--rounds N] [--duration S]`
 *
 * Measures Roster (production build) against a bare Fastify + node-postgres
 * baseline doing the same essential work (bench/baseline.ts), both on one
 * embedded PostgreSQL with the same data, alternating A/B over several rounds
 * so that drift on a shared machine hits both alike. Load comes from
 * autocannon in a process of its own (bench/load.ts). Every figure that
 * matters is a ratio measured within the run. Writes bench/results/latest.json
 * and exits non-zero when any request failed.
 *
 * `--only <text>` runs just the endpoints whose name contains the text ("login"
 * for the login row); `--profile` starts Roster with `--cpu-prof`, writing a
 * .cpuprofile per run to bench/results/profiles (open it in Chrome DevTools or
 * speedscope).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync, createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile, readFile, chmod, mkdir } from 'node:fs/promises'
import { openSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { startEmbeddedPostgres, freePort } from '../db/embedded.ts'
import { runMigrations } from '../db/migrate.ts'
import { loadKeys } from '../src/sessions/keys.ts'
import { hashPassword } from '../src/infra/passwords.ts'
import { rootDir } from '../src/infra/paths.ts'
import type { LoadJob, LoadResult } from './load.ts'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    users: { type: 'string', default: '10000' },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string', default: '10' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false }
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

async function waitFor (url: string): Promise<void> {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url)
      if (res.status < 500) return
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

function rssMb (pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((s) => Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024)
}

// ---------------------------------------------------------------- setup
log(`roster bench: ${quick ? 'quick' : 'full'} run, ${USERS} users, ${ROUNDS} rounds of ${DURATION}s, ${CONNECTIONS} connections`)
log('building the production bundle…')
const build = spawnSync('npm', ['run', 'build'], { cwd: rootDir, stdio: 'ignore' })
if (build.status !== 0) throw new Error('npm run build failed')

await mkdir(join(rootDir, 'bench', 'results'), { recursive: true })
const work = await mkdtemp(join(tmpdir(), 'roster-bench-'))
await chmod(work, 0o755)
const postgres = await startEmbeddedPostgres(join(work, 'pg'), { database: 'bench' })
const pool = new pg.Pool({ connectionString: postgres.url, max: 4 })

async function cleanup (): Promise<void> {
  // Wait for the servers to exit (a --cpu-prof profile is written at exit), for at most 10 s.
  await Promise.race([
    Promise.all(children.filter((c) => c.exitCode === null).map(async (c) => { await new Promise((resolve) => { c.once('exit', resolve); c.kill('SIGTERM') }) })),
    sleep(10_000)
  ])
  await pool.end().catch(() => {})
  await postgres.stop()
  await rm(work, { recursive: true, force: true })
}
process.on('SIGINT', () => { cleanup().then(() => process.exit(130), () => process.exit(130)) })

await runMigrations(pool)
log(`loading ${USERS} users…`)
const { rows: [admin] } = await pool.query<{ id: string }>(
  'INSERT INTO admins (email, name, password_hash, confirmed_at, role) VALUES ($1, $2, $3, now(), \'owner\') RETURNING id',
  ['bench@example.com', 'bench', await hashPassword(PASSWORD, ARGON2)]
)
const adminId = (admin as { id: string }).id
await pool.query(
  `INSERT INTO users (email, name, created_by, created_at)
   SELECT 'user' || i || '@example.com', 'User ' || md5(i::text), $2, now() - (i || ' seconds')::interval
   FROM generate_series(1, $1) AS i`, [USERS, adminId])
await pool.query('ANALYZE')
const { rows: [someUser] } = await pool.query<{ id: string }>('SELECT id FROM users ORDER BY created_at LIMIT 1 OFFSET $1', [Math.floor(USERS / 2)])
const userId = (someUser as { id: string }).id

const { privateKey } = generateKeyPairSync('ed25519')
const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
const keys = loadKeys({ privateKey: privatePem, previousPublicKeys: '', production: true, dataDir: work })
const issuer = 'http://bench.invalid'

const rosterPort = await freePort()
const basePort = await freePort()
// In production /metrics is served on a port of its own only.
const metricsPort = await freePort()
if (args.profile === true) await mkdir(profileDir, { recursive: true })
const roster = startProcess([...(args.profile === true ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), join(rootDir, 'dist', 'src', 'server.js')], {
  NODE_ENV: 'production',
  HOST: '127.0.0.1',
  PORT: String(rosterPort),
  DATABASE_URL: postgres.url,
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
startProcess(['--import', 'tsx', join(rootDir, 'bench', 'baseline.ts')], {
  PORT: String(basePort),
  DATABASE_URL: postgres.url,
  JWT_PUBLIC_KEY: keys.verifying[0]?.pem as string,
  JWT_PRIVATE_KEY: privatePem,
  JWT_KID: keys.kid,
  JWT_ISSUER: issuer,
  JWT_AUDIENCE: 'roster'
}, join(rootDir, 'bench', 'results', 'baseline.log'))
const A = `http://127.0.0.1:${rosterPort}`
const B = `http://127.0.0.1:${basePort}`
await waitFor(`${A}/health/live`)
await waitFor(`${B}/users`)

const loginRes = await fetch(`${A}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'bench@example.com', password: PASSWORD }) })
if (loginRes.status !== 200) throw new Error(`login failed: ${loginRes.status} ${await loginRes.text()}`)
const { access_token: accessToken } = await loginRes.json() as { access_token: string }
const auth = { authorization: `Bearer ${accessToken}` }

/** Sessions with fresh refresh tokens (one use each), written straight to the database. */
async function refreshTokenFile (count: number): Promise<string> {
  const tokens = Array.from({ length: count }, () => randomBytes(32).toString('base64url'))
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO sessions (admin_id, idle_expires_at, expires_at)
     SELECT $1, now() + interval '7 days', now() + interval '30 days' FROM generate_series(1, $2) RETURNING id`, [adminId, count])
  await pool.query('INSERT INTO refresh_tokens (token_hash, session_id) SELECT * FROM unnest($1::text[], $2::uuid[])',
    [tokens.map((t) => createHash('sha256').update(t).digest('base64url')), rows.map((r) => r.id)])
  const file = join(work, `refresh-${randomBytes(4).toString('hex')}.txt`)
  await writeFile(file, tokens.join('\n'))
  return file
}

// ---------------------------------------------------------------- runs
interface Endpoint { name: string, method: LoadJob['method'], path: string, body?: string, refresh?: boolean }
const endpoints: Endpoint[] = [
  { name: 'GET /users/{id}', method: 'GET', path: `/users/${userId}` },
  { name: 'GET /users?limit=50', method: 'GET', path: '/users?limit=50' },
  { name: 'GET /users?q=…', method: 'GET', path: '/users?q=user12&limit=50' },
  { name: 'POST /users', method: 'POST', path: '/users', body: '{"email":"new-[<id>]@example.com","name":"New user"}' },
  { name: 'PATCH /users/{id}', method: 'PATCH', path: `/users/${userId}`, body: '{"name":"Renamed [<id>]"}' },
  { name: 'POST /auth/refresh', method: 'POST', path: '/auth/refresh', refresh: true }
]

interface Row { endpoint: string, roster: LoadResult[], baseline: LoadResult[], ratio: number, halfRate?: LoadResult, baselineHalfRate?: LoadResult, target?: number }
const rows: Row[] = []

async function job (base: string, e: Endpoint, rate = 0): Promise<LoadJob> {
  return {
    url: `${base}${e.path}`,
    method: e.method,
    headers: e.refresh === true ? {} : auth,
    body: e.body,
    refreshTokensFile: e.refresh === true ? await refreshTokenFile(rate > 0 ? Math.ceil(rate * DURATION * 1.2) + 100 : 40_000) : undefined,
    connections: CONNECTIONS,
    duration: DURATION,
    rate
  }
}

const targets: Record<string, number> = { 'GET /users/{id}': 0.85, 'GET /users?limit=50': 0.8, 'POST /users': 0.8, 'PATCH /users/{id}': 0.8 }

for (const e of endpoints.filter((x) => selected(x.name))) {
  const row: Row = { endpoint: e.name, roster: [], baseline: [], ratio: 0, target: targets[e.name] }
  const ratios: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which server goes first, so warm-up and drift do not favour one.
    const order = r % 2 === 0 ? ['A', 'B'] : ['B', 'A']
    const got: Record<string, LoadResult> = {}
    for (const which of order) {
      got[which] = await load(await job(which === 'A' ? A : B, e))
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
  row.halfRate = await load(await job(A, e, half))
  // The baseline at the same rate: the latency floor of this machine and database.
  row.baselineHalfRate = await load(await job(B, e, half))
  rows.push(row)
}

// Login against the argon2 ceiling measured in the same run.
const loginRuns: LoadResult[] = []
const argonRuns: number[] = []
for (let r = 0; r < (selected('POST /auth/login') ? ROUNDS : 0); r++) {
  loginRuns.push(await load({ url: `${A}/auth/login`, method: 'POST', body: JSON.stringify({ email: 'bench@example.com', password: PASSWORD }), connections: CONNECTIONS, duration: DURATION }))
  const argon = spawnSync(process.execPath, ['--import', 'tsx', join(rootDir, 'bench', 'argon2-rate.ts'), String(DURATION)], { cwd: rootDir, encoding: 'utf8' })
  argonRuns.push((JSON.parse(argon.stdout) as { rate: number }).rate)
  log(`login round ${r + 1}: ${(loginRuns.at(-1) as LoadResult).rps.toFixed(1)}/s, raw argon2 verify ${(argonRuns.at(-1) as number).toFixed(1)}/s`)
}
const loginRatio = median(loginRuns.map((l, i) => l.rps / (argonRuns[i] as number)))
const rss = await rssMb(roster.pid as number)
const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
const metric = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(metrics)?.[1] ?? NaN) / 1024 / 1024

// ---------------------------------------------------------------- report
const all = [...rows.flatMap((r) => [...r.roster, ...r.baseline, r.halfRate as LoadResult, r.baselineHalfRate as LoadResult]), ...loginRuns]
const failures = all.reduce((n, r) => n + r.errors + r.timeouts + r.non2xx, 0)
const fmt = (n: number, d = 0): string => n.toFixed(d)
const table = [
  ['endpoint', 'roster req/s', 'p50 ms', 'p99 ms', 'baseline req/s', 'ratio', 'target', 'p99 @ half rate', 'baseline p99 @ same rate', 'errors/non-2xx'],
  ...rows.map((r) => [
    r.endpoint,
    fmt(median(r.roster.map((x) => x.rps))),
    fmt(median(r.roster.map((x) => x.p50)), 1),
    fmt(median(r.roster.map((x) => x.p99)), 1),
    fmt(median(r.baseline.map((x) => x.rps))),
    fmt(r.ratio, 2),
    r.target === undefined ? '' : `>= ${r.target}${r.ratio >= r.target ? ' ok' : ' MISSED'}`,
    `${fmt((r.halfRate as LoadResult).p99, 1)}${(r.halfRate as LoadResult).p99 < 25 ? ' ok' : ' MISSED'}`,
    fmt((r.baselineHalfRate as LoadResult).p99, 1),
    String([...r.roster, ...r.baseline, r.halfRate as LoadResult, r.baselineHalfRate as LoadResult].reduce((n, x) => n + x.errors + x.timeouts + x.non2xx, 0))
  ]),
  ...(loginRuns.length === 0
    ? []
    : [['POST /auth/login', fmt(median(loginRuns.map((x) => x.rps)), 1), fmt(median(loginRuns.map((x) => x.p50)), 1), fmt(median(loginRuns.map((x) => x.p99)), 1),
    `argon2 ${fmt(median(argonRuns), 1)}`, fmt(loginRatio, 2), `>= 0.9${loginRatio >= 0.9 ? ' ok' : ' MISSED'}`, '', '', String(loginRuns.reduce((n, x) => n + x.errors + x.timeouts + x.non2xx, 0))]])
]
const widths = (table[0] as string[]).map((_, i) => Math.max(...table.map((row) => (row[i] as string).length)))
for (const row of table) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i] as number)).join('  ')}\n`)
process.stdout.write(`\nroster RSS at the end: ${fmt(rss, 1)} MB (target < 200)${rss < 200 ? ' ok' : ' MISSED'}\nroster V8 heap at the end: ${fmt(metric('nodejs_heap_size_used_bytes'), 1)} MB used of ${fmt(metric('nodejs_heap_size_total_bytes'), 1)} MB\nfailed requests: ${failures}\n`)

await writeFile(join(rootDir, 'bench', 'results', 'latest.json'), `${JSON.stringify({
  date: new Date().toISOString(),
  mode: quick ? 'quick' : 'full',
  users: USERS,
  rounds: ROUNDS,
  duration: DURATION,
  connections: CONNECTIONS,
  endpoints: rows.map((r) => ({
    endpoint: r.endpoint,
    rosterRps: median(r.roster.map((x) => x.rps)),
    baselineRps: median(r.baseline.map((x) => x.rps)),
    ratio: r.ratio,
    target: r.target,
    p50: median(r.roster.map((x) => x.p50)),
    p99: median(r.roster.map((x) => x.p99)),
    halfRateP99: (r.halfRate as LoadResult).p99,
    baselineHalfRateP99: (r.baselineHalfRate as LoadResult).p99,
    runs: { roster: r.roster, baseline: r.baseline, halfRate: r.halfRate, baselineHalfRate: r.baselineHalfRate }
  })),
  login: loginRuns.length === 0 ? null : { rps: median(loginRuns.map((x) => x.rps)), argon2VerifyRate: median(argonRuns), ratio: loginRatio, runs: loginRuns },
  rssMb: rss,
  heapUsedMb: metric('nodejs_heap_size_used_bytes'),
  heapTotalMb: metric('nodejs_heap_size_total_bytes'),
  failures
}, null, 2)}\n`)

await cleanup()
process.exit(failures > 0 ? 1 : 0)
