import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import pg from 'pg'
import { createTestDatabase, waitUntil } from './helper.ts'
import { MIGRATION_LOCK } from '../db/migrate.ts'
import { spawnCaptured, spawnEntry } from './process.ts'
import { freePort } from '../db/embedded.ts'
import { rootDir } from '../src/infra/paths.ts'

interface Run { code: number | null, stdout: string, stderr: string }

function start (file: string, env: Record<string, string>) {
  const run = spawnEntry(file, env)
  const done: Promise<Run> = run.exit.then(({ code }) => ({ code, stdout: run.stdout(), stderr: run.stderr() }))
  return { child: run.child, done, output: run.stdout }
}

t.test('the entry loads node-postgres without Node\'s fetch, and leaves navigator as it was', async (t) => {
  // src/server.ts with a bad configuration: every static import has run when it exits (src/infra/pg-import.ts
  // first, then the app and its plugins, which import pg); what the process loaded is read at its exit.
  const atExit = `const before = typeof globalThis.navigator
    process.on('exit', () => process.stderr.write('loaded: ' + JSON.stringify({ undici: process.moduleLoadList.filter((m) => m.includes('undici')), before, after: typeof globalThis.navigator }) + '\\n'))`
  const run = spawnCaptured([...process.execArgv, '--import', `data:text/javascript,${encodeURIComponent(atExit)}`, join(rootDir, 'src', 'server.ts')], { env: { ...process.env, PORT: 'abc' } })
  await run.exit
  t.match(run.stderr(), /invalid configuration: PORT/, 'the entry ran its imports and stopped at the configuration')
  const seen = JSON.parse(/^loaded: (.*)$/m.exec(run.stderr())?.[1] ?? 'null') as { undici: string[], before: string, after: string } | null
  t.ok(seen, 'the exit hook reported')
  t.same(seen?.undici, [], 'fetch (undici) not loaded')
  t.equal(seen?.after, seen?.before, 'navigator as before')
})

t.test('a bad configuration is one clear message and exit code 1', async (t) => {
  const { done } = start('src/server.ts', { PORT: 'abc', LOG_LEVEL: 'nope' })
  const run = await done
  t.equal(run.code, 1)
  t.match(run.stderr, /^roster: invalid configuration: PORT: must be integer \(got "abc"\); LOG_LEVEL: must be one of [a-z, ]+ \(got "nope"\)\n$/)
  t.notMatch(run.stderr, /\bat .*\.ts:\d+/, 'no stack trace')
})

t.test('production without its settings: every problem in one line, before PostgreSQL starts', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'roster-production-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const run = await start('src/server.ts', { NODE_ENV: 'production', DATA_DIR: dataDir, DATABASE_URL: '', LOG_LEVEL: 'info' }).done
  t.equal(run.code, 1)
  t.equal(run.stderr.split('\n').filter(Boolean).length, 1, 'one line')
  t.match(run.stderr, /^roster: invalid configuration: REGISTRATION must be set when NODE_ENV=production: open .*; SECRET_KEY \(or SECRET_KEY_FILE\) is required .*; JWT_PRIVATE_KEY \(or JWT_PRIVATE_KEY_FILE\) is required/)
  t.equal(run.stdout, '', 'nothing started, nothing logged')
  t.notOk(existsSync(join(dataDir, 'postgres')), 'no embedded PostgreSQL was started')
})

t.test('the server starts, answers, and exits 0 on SIGTERM', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const port = await freePort()
  const { child, done, output } = start('src/server.ts', { DATABASE_URL: databaseUrl, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'test', LOG_LEVEL: 'info', SHUTDOWN_DELAY: '300' })
  await waitUntil(() => output().includes('Roster is up'), { what: 'the server to start', timeout: 30_000 })
  t.match(output(), new RegExp(`API docs at http://localhost:${port}/apidocs`))
  // Ready once the database answers: on a loaded machine a first connection may outlast DB_CONNECTION_TIMEOUT (a 503 then).
  const ready = async (): Promise<boolean> => (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200
  await waitUntil(ready, { what: 'readiness to answer 200', timeout: 30_000 })
  t.ok(await ready(), 'ready')
  child.kill('SIGTERM')
  const run = await done
  t.equal(run.code, 0)
  t.match(run.stdout, /"signal":"SIGTERM","msg":"shutting down"/)
  t.match(run.stdout, /"delay":300,"msg":"readiness says 503, still serving: the listener closes after SHUTDOWN_DELAY"/)
})

t.test('SIGINT (Ctrl-C) skips the pre-stop delay', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const port = await freePort()
  const { child, done, output } = start('src/server.ts', { DATABASE_URL: databaseUrl, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'test', LOG_LEVEL: 'info', SHUTDOWN_DELAY: '60000' })
  await waitUntil(() => output().includes('Roster is up'), { what: 'the server to start', timeout: 30_000 })
  child.kill('SIGINT')
  const run = await done
  t.equal(run.code, 0)
  t.notMatch(run.stdout, /SHUTDOWN_DELAY/)
})

t.test('a server that cannot start says why and exits 1', async (t) => {
  const { done } = start('src/server.ts', { DATABASE_URL: 'postgres://nobody:x@127.0.0.1:1/none', DB_CONNECTION_TIMEOUT: '500', LOG_LEVEL: 'silent' })
  const run = await done
  t.equal(run.code, 1)
  t.match(run.stderr, /roster: failed to start: .*ECONNREFUSED/)
})

t.test('npm run migrate applies migrations to DATABASE_URL', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const run = await start('src/cli/migrate.ts', { DATABASE_URL: databaseUrl }).done
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /migrations applied \(\d+ in total\)/)
  const again = await start('src/cli/migrate.ts', { DATABASE_URL: databaseUrl }).done
  t.equal(again.code, 0, 'idempotent')
  const bad = await start('src/cli/migrate.ts', { DATABASE_URL: 'postgres://nobody:x@127.0.0.1:1/none', DB_CONNECTION_TIMEOUT: '500' }).done
  t.equal(bad.code, 1)
  t.match(bad.stderr, /migration failed/)
  const dataDir = mkdtempSync(join(tmpdir(), 'roster-migrate-'))
  chmodSync(dataDir, 0o755)
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const embedded = await start('src/cli/migrate.ts', { DATABASE_URL: '', DATA_DIR: dataDir }).done
  t.equal(embedded.code, 0, 'with no database configured it migrates the embedded one')
  t.ok(existsSync(join(dataDir, 'postgres', 'PG_VERSION')))
  const invalid = await start('src/cli/migrate.ts', { PORT: 'x' }).done
  t.equal(invalid.code, 1)
  t.match(invalid.stderr, /PORT: must be integer/)

  // Its connection lost while it migrates (here while it waits for another instance's migration lock): one line, exit 1.
  const holder = new pg.Client({ connectionString: databaseUrl })
  await holder.connect()
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 })
  t.teardown(async () => { await holder.end(); await pool.end() })
  await holder.query('BEGIN')
  await holder.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
  const waiting = start('src/cli/migrate.ts', { DATABASE_URL: databaseUrl }).done
  // Read outside the holder's transaction, which would keep its first reading of pg_stat_activity.
  const terminated = async (): Promise<boolean> => (await pool.query(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'roster-cli' AND wait_event_type = 'Lock'")).rowCount === 1
  // A started command takes a few seconds to load (tap's loaders), more on a busy machine.
  await waitUntil(terminated, { what: 'the command waiting for the lock', timeout: 60_000, interval: 100 })
  const lost = await waiting
  t.equal(lost.code, 1)
  t.equal(lost.stderr, 'roster: migration failed: terminating connection due to administrator command\n', 'its one line, no stack trace')
  await holder.query('ROLLBACK')
})

t.test('kill -TERM to `npm start` stops the server and its embedded PostgreSQL', async (t) => {
  // `npm start` runs the build in dist/ (CI builds before the tests; its prestart builds one when there is none).
  const dataDir = mkdtempSync(join(tmpdir(), 'roster-npm-start-'))
  chmodSync(dataDir, 0o755)
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const port = await freePort()
  const npm = spawn('npm', ['start'], { cwd: rootDir, env: { ...process.env, DATABASE_URL: '', DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'test', LOG_LEVEL: 'info', SHUTDOWN_DELAY: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  npm.stdout.on('data', (d) => { output += String(d) })
  npm.stderr.on('data', (d) => { output += String(d) })
  const exited = new Promise<number | null>((resolve) => npm.on('exit', resolve))
  t.teardown(() => { npm.kill('SIGKILL') })
  await waitUntil(() => output.includes('Roster is up'), { what: `npm start to serve (${output.slice(-500)})`, timeout: 180_000 })
  const node = Number(/"pid":(\d+)/.exec(output)?.[1])
  const postmaster = Number(readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0])
  t.not(node, npm.pid, 'the server is a process of its own')
  npm.kill('SIGTERM')
  t.equal(await exited, 0, 'npm exits 0 once the server has')
  t.match(output, /"signal":"SIGTERM","msg":"shutting down"/, 'the signal reached the server')
  t.throws(() => process.kill(node, 0), { code: 'ESRCH' }, 'node is gone')
  await waitUntil(() => { try { process.kill(postmaster, 0); return false } catch { return true } }, { what: 'the postmaster to be gone', timeout: 15_000 })
  t.notOk(existsSync(join(dataDir, 'postgres', 'postmaster.pid')), 'the embedded PostgreSQL was stopped')
})
