/**
 * `npm run bench:churn [-- --minutes 4 --instances 2 --workers 4]`: do the
 * tables stop growing? Runs the production build (two instances on one
 * embedded PostgreSQL, short session lifetimes, the pruning job every 10 s,
 * ended sessions and sent emails pruned at once) while workers churn on
 * loopback: register an admin, confirm it with the emailed link, log in,
 * refresh three times, log out (or leave the session to expire), and try a
 * wrong password for an unknown email, each step from an address of its own.
 * Every 15 s it prints each table's row count; at the end, whether each one
 * levelled off. Accounts (admins) and the audit log are data, not garbage:
 * they grow with registrations (the audit log unless AUDIT_RETENTION_DAYS).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { freePort, startEmbeddedPostgres } from '../db/embedded.ts'
import { runMigrations } from '../db/migrate.ts'
import { rootDir } from '../src/infra/paths.ts'
import { startFlags } from './start-flags.ts'
import { waitReady } from './ready.ts'

const { values: args } = parseArgs({ options: { minutes: { type: 'string', default: '4' }, instances: { type: 'string', default: '2' }, workers: { type: 'string', default: '4' } } })
const MINUTES = Number(args.minutes)
const INSTANCES = Number(args.instances)
const WORKERS = Number(args.workers)
const SAMPLE_EVERY = 15_000
const PASSWORD = 'churning through the tables'
/** Pruned tables, which must level off; then the data that grows with use by design. */
const PRUNED = ['sessions', 'refresh_tokens', 'account_tokens', 'login_throttle', 'rate_limit_hits', 'email_outbox', 'idempotency_keys']
const DATA = ['admins', 'audit_events']

if (spawnSync('npm', ['run', 'build'], { cwd: rootDir, stdio: 'ignore' }).status !== 0) throw new Error('build failed')
const work = await mkdtemp(join(tmpdir(), 'roster-churn-'))
await chmod(work, 0o755)
const postgres = await startEmbeddedPostgres(join(work, 'pg'), { database: 'churn' })
const pool = new pg.Pool({ connectionString: postgres.url, max: 2 })
await runMigrations(pool)

/** Emailed links, by recipient, read from the instances' logs (MAIL_TRANSPORT=log). */
const links = new Map<string, string>()
const jwt = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
const secret = randomBytes(32).toString('base64url')
const servers: ChildProcess[] = []
const bases: string[] = []
for (let i = 0; i < INSTANCES; i++) {
  const port = await freePort()
  const child = spawn(process.execPath, [...startFlags(), join(rootDir, 'dist', 'src', 'server.js')], {
    cwd: rootDir,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      PUBLIC_URL: 'http://churn.invalid',
      // The workers register admins: production wants the choice said.
      REGISTRATION: 'open',
      METRICS_PORT: String(await freePort()),
      DATABASE_URL: postgres.url,
      DATA_DIR: join(work, `data-${i}`),
      JWT_PRIVATE_KEY: jwt,
      SECRET_KEY: secret,
      MAIL_TRANSPORT: 'log',
      LOG_LEVEL: 'info',
      MIGRATE_ON_START: 'false',
      TRUST_PROXY: '1',
      AUTH_RATE_LIMIT: '1000000000',
      AUTH_RATE_WINDOW: '30',
      LOCKOUT_WINDOW: '60',
      ACCESS_TOKEN_TTL: '60',
      SESSION_IDLE_TTL: '60',
      SESSION_ABSOLUTE_TTL: '120',
      PRUNE_INTERVAL: '10000',
      SESSION_RETENTION_DAYS: '0',
      OUTBOX_RETENTION_DAYS: '0',
      SHUTDOWN_DELAY: '0'
    }
  })
  let partial = ''
  child.stdout?.on('data', (d) => {
    const parts = (partial + String(d)).split('\n')
    partial = parts.pop() as string
    for (const line of parts) {
      if (!line.includes('"email"')) continue
      const email = (JSON.parse(line) as { email?: { to: string, link: string } }).email
      if (email !== undefined) links.set(email.to, email.link)
    }
  })
  servers.push(child)
  bases.push(`http://127.0.0.1:${port}`)
}
for (const [n, base] of bases.entries()) await waitReady(base, servers[n] as ChildProcess, `instance ${n}`)

let addresses = 0
const address = (): string => { const n = ++addresses; return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` }
const counts: Record<string, number> = {}
async function call (base: string, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number, json: Record<string, string> }> {
  const headers: Record<string, string> = { 'x-forwarded-for': address() }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  const key = `${method} ${path.split('?')[0] as string} ${res.status}`
  counts[key] = (counts[key] ?? 0) + 1
  return { status: res.status, json: text.startsWith('{') ? JSON.parse(text) as Record<string, string> : {} }
}

const deadline = Date.now() + MINUTES * 60_000
let registered = 0
async function worker (w: number): Promise<void> {
  for (let round = 0; Date.now() < deadline && round < 1_000_000; round++) {
    const base = bases[(w + round) % bases.length] as string
    const email = `churn-${w}-${round}@example.com`
    if ((await call(base, 'POST', '/auth/register', { email, name: `churn${w}x${round}`, password: PASSWORD })).status !== 201) continue
    registered++
    for (let i = 0; i < 100 && !links.has(email); i++) await new Promise((resolve) => setTimeout(resolve, 20))
    const link = links.get(email)
    links.delete(email)
    if (link === undefined) continue
    const url = new URL(link)
    await call(base, 'GET', `${url.pathname}${url.search}`)
    let pair = (await call(base, 'POST', '/auth/login', { email, password: PASSWORD })).json
    for (let i = 0; i < 3 && pair.refresh_token !== undefined; i++) pair = (await call(bases[i % bases.length] as string, 'POST', '/auth/refresh', { refresh_token: pair.refresh_token })).json
    if (round % 2 === 0 && pair.access_token !== undefined) await call(base, 'POST', '/auth/logout', undefined, pair.access_token)
    await call(base, 'POST', '/auth/login', { email: `nobody-${w}-${round}@example.com`, password: 'not the password' })
  }
}

async function sample (): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const table of [...PRUNED, ...DATA]) out[table] = (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n as number
  return out
}

const samples: Array<{ at: number, rows: Record<string, number>, registered: number }> = []
const started = Date.now()
const header = ['time', 'regs/min', ...PRUNED, ...DATA].map((h) => h.padStart(h === 'time' ? 6 : Math.max(8, h.length))).join(' ')
process.stdout.write(`churn: ${INSTANCES} instances, ${WORKERS} workers, ${MINUTES} min (sessions live 60 s idle / 120 s at most; pruning every 10 s)\n${header}\n`)
/** Registrations (each one round of churn) in the minute before sample `i`: the pace the tables follow. */
const pace = (i: number): number => {
  const s = samples[i] as { at: number, registered: number }
  const before = samples.findLast((p) => p.at <= s.at - 60_000) ?? { registered: 0, at: 0 }
  return Math.max(1, (s.registered - before.registered) * 60_000 / Math.max(1, s.at - before.at))
}
const print = (i: number): void => {
  const s = samples[i] as { at: number, rows: Record<string, number> }
  const cells = [`${Math.round(s.at / 1000)}s`.padStart(6), String(Math.round(pace(i))).padStart(8), ...[...PRUNED, ...DATA].map((table) => String(s.rows[table]).padStart(Math.max(8, table.length)))]
  process.stdout.write(`${cells.join(' ')}\n`)
}
const sampler = setInterval(() => {
  sample().then((rows) => { samples.push({ at: Date.now() - started, rows, registered }); print(samples.length - 1) }, () => {})
}, SAMPLE_EVERY)
await Promise.all(Array.from({ length: WORKERS }, async (_, w) => { await worker(w) }))
clearInterval(sampler)

// Levelled off: per registration a minute (the machine's pace varies, and the tables follow it), the last third
// of the run holds on average no more than the middle third did (25 % margin). A table that is never pruned
// grows with the run's length: at a steady pace it holds about 1.67 times as much in the last third.
const third = Math.floor(samples.length / 3)
const indices = samples.map((_, i) => i)
const middle = indices.slice(third, 2 * third)
const last = indices.slice(2 * third)
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
const perPace = (table: string, is: number[]): number => mean(is.map((i) => (samples[i]?.rows[table] as number) / pace(i)))
let ok = samples.length >= 6
process.stdout.write(`\n${registered} registrations; requests: ${Object.entries(counts).sort().map(([k, n]) => `${k} ${n}`).join(', ')}\n`)
for (const table of PRUNED) {
  const before = perPace(table, middle)
  const after = perPace(table, last)
  const levelled = after <= before * 1.25 + 0.05
  ok &&= levelled
  process.stdout.write(`  ${table.padEnd(16)} rows per registration a minute: middle third ${before.toFixed(2)}, last third ${after.toFixed(2)}: ${levelled ? 'levelled off' : 'STILL GROWING'}\n`)
}
for (const table of DATA) process.stdout.write(`  ${table.padEnd(16)} ${samples[0]?.rows[table]} → ${samples.at(-1)?.rows[table]} (data: grows with registrations by design)\n`)
if (samples.length < 6) process.stdout.write('  too few samples to tell: run for at least 2 minutes\n')

await pool.end()
await Promise.all(servers.map(async (s) => { await new Promise((resolve) => { s.once('exit', resolve); s.kill('SIGTERM') }) }))
await postgres.stop()
await rm(work, { recursive: true, force: true })
process.exit(ok ? 0 : 1)
