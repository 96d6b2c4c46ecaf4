/**
 * `npm run bench:enumeration`: does POST /auth/login, or POST /auth/register,
 * take measurably longer for an email that has an account than for one that
 * has none? Runs the production build on an embedded PostgreSQL with the
 * production argon2 cost, alternates known and unknown emails one request at a
 * time (logins with wrong passwords; registrations, which answer 201 either
 * way), and prints the medians and their difference. Each must stay under 5 ms.
 */
import { spawn, spawnSync } from 'node:child_process'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { startEmbeddedPostgres, freePort } from '../db/embedded.ts'
import { runMigrations } from '../db/migrate.ts'
import { hashPassword } from '../src/infra/passwords.ts'
import { rootDir } from '../src/infra/paths.ts'
import { startFlags } from './start-flags.ts'
import { waitReady } from './ready.ts'

const SAMPLES = Number(process.argv[2] ?? 200)
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] as number }

if (spawnSync('npm', ['run', 'build'], { cwd: rootDir, stdio: 'ignore' }).status !== 0) throw new Error('build failed')
const work = await mkdtemp(join(tmpdir(), 'roster-enum-'))
await chmod(work, 0o755)
const postgres = await startEmbeddedPostgres(join(work, 'pg'), { database: 'enum' })
const pool = new pg.Pool({ connectionString: postgres.url, max: 2 })
await runMigrations(pool)
const known: string[] = []
for (let i = 0; i < 20; i++) {
  const email = `known-${i}@example.com`
  known.push(email)
  await pool.query('INSERT INTO admins (email, name, password_hash, confirmed_at) VALUES ($1, $2, $3, now())', [email, `known-${i}`, await hashPassword(randomBytes(16).toString('hex'), { memoryCost: 19456, timeCost: 2, parallelism: 1 })])
}
await pool.end()

const port = await freePort()
const server = spawn(process.execPath, [...startFlags(), join(rootDir, 'dist', 'src', 'server.js')], {
  cwd: rootDir,
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, NODE_ENV: 'production', PUBLIC_URL: 'http://bench.invalid', SHUTDOWN_DELAY: '0', HOST: '127.0.0.1', PORT: String(port), DATABASE_URL: postgres.url, LOG_LEVEL: 'warn', SECRET_KEY: randomBytes(32).toString('hex'), JWT_PRIVATE_KEY: (await import('node:crypto')).generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), AUTH_RATE_LIMIT: '1000000000', LOCKOUT_THRESHOLD: '1000', LOCKOUT_ACCOUNT_THRESHOLD: '100000', REGISTRATION: 'open', METRICS_ENABLED: 'false' }
})
const base = `http://127.0.0.1:${port}`
await waitReady(base, server)

/** Milliseconds of one request, which must answer `status`. */
async function timed (path: string, body: unknown, status: number): Promise<number> {
  const start = process.hrtime.bigint()
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  await res.arrayBuffer()
  if (res.status !== status) throw new Error(`${path}: expected ${status}, got ${res.status}`)
  return Number(process.hrtime.bigint() - start) / 1e6
}

/** Alternates requests for known and unknown emails (the order swapped every other time, so drift hits both alike); true when the medians differ by less than 5 ms. */
async function compare (what: string, known: (i: number) => Promise<number>, unknown: (i: number) => Promise<number>): Promise<boolean> {
  const knownTimes: number[] = []
  const unknownTimes: number[] = []
  for (let i = 0; i < 10; i++) { await known(-1 - i); await unknown(-1 - i) }
  for (let i = 0; i < SAMPLES; i++) {
    if (i % 2 === 0) { knownTimes.push(await known(i)); unknownTimes.push(await unknown(i)) } else { unknownTimes.push(await unknown(i)); knownTimes.push(await known(i)) }
  }
  const diff = median(knownTimes) - median(unknownTimes)
  const ok = Math.abs(diff) < 5
  process.stdout.write(`${what}, ${SAMPLES} samples each:\n  known email   median ${median(knownTimes).toFixed(2)} ms\n  unknown email median ${median(unknownTimes).toFixed(2)} ms\n  difference of medians ${diff.toFixed(2)} ms (must be < 5 ms): ${ok ? 'ok' : 'FAILED'}\n`)
  return ok
}

const WRONG = 'definitely the wrong password'
const login = await compare('login with a wrong password',
  async (i) => await timed('/auth/login', { email: known[Math.abs(i) % known.length], password: WRONG }, 401),
  async (i) => await timed('/auth/login', { email: `nobody-${i}@example.com`, password: WRONG }, 401))
// A registration for a known email emails its owner (at most 5 an hour, then only audits): both cases are measured.
const PASSPHRASE = 'a perfectly fine passphrase'
const registration = await compare('registration',
  async (i) => await timed('/auth/register', { email: known[Math.abs(i) % known.length], name: `known-reg-${i + 20}`, password: PASSPHRASE }, 201),
  async (i) => await timed('/auth/register', { email: `new-${i}@example.com`, name: `new-reg-${i + 20}`, password: PASSPHRASE }, 201))
const ok = login && registration
server.kill('SIGTERM')
await new Promise((resolve) => server.on('exit', resolve))
await postgres.stop()
await rm(work, { recursive: true, force: true })
process.exit(ok ? 0 : 1)
