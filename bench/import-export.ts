/**
 * `npm run bench:import [-- --users 100000] [--format ndjson|csv]`: bulk import
 * and export. Runs the production build on an embedded PostgreSQL, logs an
 * owner in, and over real HTTP on 127.0.0.1 imports N users (100,000 by
 * default) in one streamed POST /users/import, then exports them all with
 * GET /users/export (read as it streams, not kept). Samples the server's RSS
 * (/proc/<pid>/status) every 20 ms throughout and prints the times and the
 * peak, and the CPU time the server and PostgreSQL used for each (on a busy
 * machine, what a quiet one would roughly take). Goals: import under 10 s,
 * export under 3 s, RSS under 250 MB. Exits 1
 * when the import or the export is incomplete.
 */
import { spawn, spawnSync } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { freePort, startEmbeddedPostgres } from '../db/embedded.ts'
import { runMigrations } from '../db/migrate.ts'
import { hashPassword } from '../src/infra/passwords.ts'
import { rootDir } from '../src/infra/paths.ts'
import { startFlags } from './start-flags.ts'
import { waitReady } from './ready.ts'
import { cpuMs, postgresCpuMs, rssMb } from './proc.ts'

const { values: args } = parseArgs({ options: { users: { type: 'string', default: '100000' }, format: { type: 'string', default: 'ndjson' } } })
const USERS = Number(args.users)
const FORMAT = args.format === 'csv' ? 'csv' : 'ndjson'
const PASSWORD = 'a long enough benchmark password'
const log = (line: string): void => { process.stderr.write(`${line}\n`) }

if (spawnSync('npm', ['run', 'build'], { cwd: rootDir, stdio: 'ignore' }).status !== 0) throw new Error('build failed')
const work = await mkdtemp(join(tmpdir(), 'roster-transfer-'))
await chmod(work, 0o755)
const postgres = await startEmbeddedPostgres(join(work, 'pg'), { database: 'transfer' })
const pool = new pg.Pool({ connectionString: postgres.url, max: 1 })
await runMigrations(pool)
await pool.query('INSERT INTO admins (email, name, password_hash, confirmed_at, role) VALUES ($1, $2, $3, now(), \'owner\')',
  ['owner@example.com', 'owner', await hashPassword(PASSWORD, { memoryCost: 19456, timeCost: 2, parallelism: 1 })])
await pool.end()

const port = await freePort()
const service = spawn(process.execPath, [...startFlags(), join(rootDir, 'dist', 'src', 'server.js')], {
  cwd: rootDir,
  stdio: ['ignore', 'ignore', 'inherit'],
  env: {
    ...process.env,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    METRICS_PORT: String(await freePort()),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL: postgres.url,
    LOG_LEVEL: 'warn',
    SECRET_KEY: randomBytes(32).toString('hex'),
    JWT_PRIVATE_KEY: generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    MAIL_DISPATCHER: 'false',
    REGISTRATION: 'closed',
    REQUEST_TIMEOUT: '600000'
  }
})
const base = `http://127.0.0.1:${port}`
await waitReady(base, service)

/** CPU seconds (user + system) used so far by the server, and by PostgreSQL: its postmaster and the postmaster's children (the backends). */
const cpu = async (): Promise<{ server: number, postgres: number }> => ({
  server: await cpuMs(service.pid as number) / 1000,
  postgres: [...(await postgresCpuMs(join(work, 'pg'))).values()].reduce((a, b) => a + b, 0) / 1000
})

let peakRss = 0
const sampler = setInterval(() => { rssMb(service.pid as number).then((mb) => { peakRss = Math.max(peakRss, mb) }, () => {}) }, 20)
const idle = await rssMb(service.pid as number)

const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'owner@example.com', password: PASSWORD }) })
const { access_token: token } = await login.json() as { access_token: string }
const auth = { authorization: `Bearer ${token}` }

/** The import body, made as it is sent (the client holds no file either). */
function * rows (): Generator<string> {
  if (FORMAT === 'csv') yield 'email,name,active\r\n'
  for (let i = 0; i < USERS; i += 1000) {
    let chunk = ''
    for (let j = i; j < Math.min(i + 1000, USERS); j++) {
      chunk += FORMAT === 'csv' ? `user${j}@example.com,User ${j},${j % 7 !== 0}\r\n` : `{"email":"user${j}@example.com","name":"User ${j}","active":${j % 7 !== 0}}\n`
    }
    yield chunk
  }
}

const cpuBefore = await cpu()
let started = performance.now()
const imported = await fetch(`${base}/users/import`, {
  method: 'POST',
  headers: { ...auth, 'content-type': FORMAT === 'csv' ? 'text/csv' : 'application/x-ndjson' },
  body: Readable.toWeb(Readable.from(rows())) as ReadableStream,
  duplex: 'half'
} as RequestInit)
const report = await imported.json() as { created: number, invalid: number, duplicates: number }
const importSeconds = (performance.now() - started) / 1000
const cpuImport = await cpu()
const afterImport = peakRss
log(`import: ${imported.status} ${JSON.stringify({ created: report.created, invalid: report.invalid, duplicates: report.duplicates })}`)

started = performance.now()
const exported = await fetch(`${base}/users/export`, { headers: { ...auth, accept: FORMAT === 'csv' ? 'text/csv' : 'application/x-ndjson' } })
let lines = 0
let bytes = 0
for await (const chunk of exported.body as unknown as AsyncIterable<Uint8Array>) {
  bytes += chunk.length
  for (const b of chunk) if (b === 10) lines++
}
const exportSeconds = (performance.now() - started) / 1000
const cpuExport = await cpu()
const used = (from: { server: number, postgres: number }, to: { server: number, postgres: number }): string =>
  `CPU: server ${(to.server - from.server).toFixed(1)} s, PostgreSQL ${(to.postgres - from.postgres).toFixed(1)} s`
clearInterval(sampler)
const exportedUsers = FORMAT === 'csv' ? lines - 1 : lines

const ok = (good: boolean): string => good ? 'ok' : 'MISSED'
process.stdout.write([
  `bulk transfer of ${USERS} users (${FORMAT}), production build, one request each over 127.0.0.1:`,
  `  import: ${importSeconds.toFixed(2)} s (goal < 10 s) ${ok(importSeconds < 10)}; created ${report.created}; ${used(cpuBefore, cpuImport)}`,
  `  export: ${exportSeconds.toFixed(2)} s (goal < 3 s) ${ok(exportSeconds < 3)}; ${exportedUsers} users, ${(bytes / 1048576).toFixed(1)} MB; ${used(cpuImport, cpuExport)}`,
  `  server RSS: ${idle.toFixed(0)} MB idle, peak ${afterImport.toFixed(0)} MB during the import, ${peakRss.toFixed(0)} MB overall (goal < 250 MB) ${ok(peakRss < 250)}`,
  ''
].join('\n'))

service.kill('SIGTERM')
await new Promise((resolve) => service.once('exit', resolve))
await postgres.stop()
await rm(work, { recursive: true, force: true })
if (report.created !== USERS || exportedUsers !== USERS) {
  log(`incomplete: created ${report.created}, exported ${exportedUsers} of ${USERS}`)
  process.exitCode = 1
}
