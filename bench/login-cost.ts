/**
 * `npm run bench:login-cost`: what two-factor login costs. Runs the production
 * build on an embedded PostgreSQL with the production argon2 cost, behind a
 * small TCP proxy that counts the round trips the service makes to PostgreSQL
 * (each Sync or simple Query message of the wire protocol is one), and logs in,
 * one request at a time, SAMPLES admins without MFA and SAMPLES with TOTP
 * (password, then a code: each account once, since a code is accepted once).
 * Prints round trips and the median time per login.
 */
import { spawn, spawnSync } from 'node:child_process'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { createServer, connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import pg from 'pg'
import { startEmbeddedPostgres, freePort } from '../db/embedded.ts'
import { runMigrations } from '../db/migrate.ts'
import { hashPassword } from '../src/infra/passwords.ts'
import { rootDir } from '../src/infra/paths.ts'
import { createSecretBox } from '../src/infra/secret-box.ts'
import { hotp, newTotpSecret, timeStep, TOTP_SECRET_PURPOSE } from '../src/infra/totp.ts'
import { startFlags } from './start-flags.ts'
import { waitReady } from './ready.ts'

const SAMPLES = Number(process.argv[2] ?? 40)
const PASSWORD = 'a long enough benchmark password'
const SECRET_KEY = randomBytes(32).toString('hex')
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] as number }

if (spawnSync('npm', ['run', 'build'], { cwd: rootDir, stdio: 'ignore' }).status !== 0) throw new Error('build failed')
const work = await mkdtemp(join(tmpdir(), 'roster-login-cost-'))
await chmod(work, 0o755)
const postgres = await startEmbeddedPostgres(join(work, 'pg'), { database: 'logincost' })
const pool = new pg.Pool({ connectionString: postgres.url, max: 2 })
await runMigrations(pool)
const hash = await hashPassword(PASSWORD, { memoryCost: 19456, timeCost: 2, parallelism: 1 })
const box = createSecretBox(SECRET_KEY, TOTP_SECRET_PURPOSE)
const secrets = new Map<string, Buffer>()
for (let i = 0; i < SAMPLES; i++) {
  await pool.query('INSERT INTO admins (email, name, password_hash, confirmed_at, role) VALUES ($1, $2, $3, now(), \'owner\')', [`plain-${i}@example.com`, `plain-${i}`, hash])
  const { rows: [row] } = await pool.query<{ id: string }>('INSERT INTO admins (email, name, password_hash, confirmed_at, role) VALUES ($1, $2, $3, now(), \'owner\') RETURNING id', [`mfa-${i}@example.com`, `mfa-${i}`, hash])
  const secret = newTotpSecret()
  await pool.query('UPDATE admins SET totp_secret = $2, totp_enabled_at = now() WHERE id = $1', [row?.id, box.seal(secret, row?.id as string)])
  secrets.set(`mfa-${i}@example.com`, secret)
}
await pool.end()

// The proxy: counts Sync ('S') and simple Query ('Q') messages from the service to PostgreSQL.
let roundTrips = 0
const upstream = new URL(postgres.url)
const target = { port: Number(upstream.port), host: upstream.hostname }
const proxy = createServer((client: Socket) => {
  const server = connect(target.port, target.host)
  let started = false
  let buffer = Buffer.alloc(0)
  client.on('data', (chunk: Buffer) => {
    server.write(chunk)
    buffer = Buffer.concat([buffer, chunk])
    for (;;) {
      if (!started) {
        if (buffer.length < 4) return
        const length = buffer.readUInt32BE(0)
        if (buffer.length < length) return
        buffer = buffer.subarray(length)
        started = true
        continue
      }
      if (buffer.length < 5) return
      const length = buffer.readUInt32BE(1)
      if (buffer.length < length + 1) return
      const type = String.fromCharCode(buffer[0] as number)
      if (type === 'S' || type === 'Q') roundTrips++
      buffer = buffer.subarray(length + 1)
    }
  })
  server.on('data', (chunk) => client.write(chunk))
  const end = (): void => { client.destroy(); server.destroy() }
  client.on('error', end).on('close', end)
  server.on('error', end).on('close', end)
})
const proxyPort = await freePort()
await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve))
upstream.port = String(proxyPort)

const port = await freePort()
const service = spawn(process.execPath, [...startFlags(), join(rootDir, 'dist', 'src', 'server.js')], {
  cwd: rootDir,
  stdio: ['ignore', 'ignore', 'inherit'],
  env: {
    ...process.env,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PUBLIC_URL: 'https://roster.example.com',
    PORT: String(port),
    DATABASE_URL: upstream.href,
    LOG_LEVEL: 'warn',
    SECRET_KEY,
    JWT_PRIVATE_KEY: generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    AUTH_RATE_LIMIT: '1000000000',
    LOCKOUT_THRESHOLD: '1000',
    MAIL_DISPATCHER: 'false',
    REGISTRATION: 'closed'
  }
})
const base = `http://127.0.0.1:${port}`
await waitReady(base, service)

async function post (path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`)
  return await res.json() as Record<string, unknown>
}

/** One login, timed, with the round trips it made. */
async function login (email: string): Promise<{ ms: number, trips: number }> {
  const before = roundTrips
  const start = process.hrtime.bigint()
  const first = await post('/auth/login', { email, password: PASSWORD })
  const secret = secrets.get(email)
  if (secret !== undefined) {
    const done = await post('/auth/login/mfa', { mfa_token: first.mfa_token, code: hotp(secret, timeStep(Date.now())) })
    if (typeof done.access_token !== 'string') throw new Error('no token')
  } else if (typeof first.access_token !== 'string') throw new Error('no token')
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, trips: roundTrips - before }
}

const plain: Array<{ ms: number, trips: number }> = []
const mfa: Array<{ ms: number, trips: number }> = []
await login('plain-0@example.com') // warm-up: prepares the statements on a connection
for (let i = 0; i < SAMPLES; i++) {
  // Alternate the order so drift hits both alike.
  if (i % 2 === 0) { plain.push(await login(`plain-${i}@example.com`)); mfa.push(await login(`mfa-${i}@example.com`)) } else { mfa.push(await login(`mfa-${i}@example.com`)); plain.push(await login(`plain-${i}@example.com`)) }
}
const line = (name: string, xs: Array<{ ms: number, trips: number }>): string =>
  `  ${name} round trips ${[...new Set(xs.map((x) => x.trips))].sort().join('/')} (median ${median(xs.map((x) => x.trips))}), median ${median(xs.map((x) => x.ms)).toFixed(1)} ms per login\n`
process.stdout.write(`login, ${SAMPLES} samples each (production argon2 cost; one request at a time):\n${line('without MFA', plain)}${line('with TOTP  ', mfa)}`)
service.kill('SIGTERM')
await new Promise((resolve) => service.on('exit', resolve))
proxy.close()
await postgres.stop()
await rm(work, { recursive: true, force: true })
