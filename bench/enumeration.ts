/**
 * `npm run bench:enumeration`: does POST /auth/login take measurably longer for
 * a known email than for an unknown one? Runs the production build on an
 * embedded PostgreSQL with the production argon2 cost, alternates known and
 * unknown emails (wrong passwords) one request at a time, and prints the
 * medians and their difference. It must stay under 5 ms.
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
const server = spawn(process.execPath, [join(rootDir, 'dist', 'src', 'server.js')], {
  cwd: rootDir,
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, NODE_ENV: 'production', PUBLIC_URL: 'http://bench.invalid', SHUTDOWN_DELAY: '0', HOST: '127.0.0.1', PORT: String(port), DATABASE_URL: postgres.url, LOG_LEVEL: 'warn', SECRET_KEY: randomBytes(32).toString('hex'), JWT_PRIVATE_KEY: (await import('node:crypto')).generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), AUTH_RATE_LIMIT: '1000000000', LOCKOUT_THRESHOLD: '1000' }
})
const base = `http://127.0.0.1:${port}`
for (let i = 0; i < 1200; i++) { // up to 2 min: a first start on a busy machine
  try { if ((await fetch(`${base}/health/ready`)).ok) break } catch { /* starting */ }
  await new Promise((resolve) => setTimeout(resolve, 100))
}

async function attempt (email: string): Promise<number> {
  const start = process.hrtime.bigint()
  const res = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'definitely the wrong password' }) })
  await res.arrayBuffer()
  if (res.status !== 401) throw new Error(`expected 401, got ${res.status}`)
  return Number(process.hrtime.bigint() - start) / 1e6
}

const knownTimes: number[] = []
const unknownTimes: number[] = []
for (let i = 0; i < 10; i++) { await attempt(known[0] as string); await attempt(`warmup-${i}@example.com`) }
for (let i = 0; i < SAMPLES; i++) {
  // Alternate the order so drift hits both alike.
  if (i % 2 === 0) { knownTimes.push(await attempt(known[i % known.length] as string)); unknownTimes.push(await attempt(`nobody-${i}@example.com`)) } else { unknownTimes.push(await attempt(`nobody-${i}@example.com`)); knownTimes.push(await attempt(known[i % known.length] as string)) }
}
const diff = median(knownTimes) - median(unknownTimes)
process.stdout.write(`login with a wrong password, ${SAMPLES} samples each:\n  known email   median ${median(knownTimes).toFixed(2)} ms\n  unknown email median ${median(unknownTimes).toFixed(2)} ms\n  difference of medians ${diff.toFixed(2)} ms (must be < 5 ms): ${Math.abs(diff) < 5 ? 'ok' : 'FAILED'}\n`)
server.kill('SIGTERM')
await new Promise((resolve) => server.on('exit', resolve))
await postgres.stop()
await rm(work, { recursive: true, force: true })
process.exit(Math.abs(diff) < 5 ? 0 : 1)
