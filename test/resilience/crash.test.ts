/**
 * Database crash under a write load, against the real server process.
 *
 * The server is `src/server.ts` spawned as in production (close-with-grace
 * turns any uncaught error or unhandled rejection into a shutdown, so "the
 * process never exits" means something), talking HTTP over loopback sockets
 * to this test. Its database is an embedded PostgreSQL of this test's own (not
 * the one test/run.ts shares with every file), which the test stops in
 * immediate mode, keeps down for 5 s and starts again on the same port and
 * data directory.
 */
import t from 'tap'
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { build, createAdmin, loginAs, TEST_ENV, waitUntil } from '../helper.ts'
import { freePort, startEmbeddedPostgres } from '../../db/embedded.ts'
import { rootDir } from '../../src/infra/paths.ts'
import { spawnEntry } from '../process.ts'

/** The write endpoint under load: the real POST /users, with Idempotency-Key. */
const WRITE = {
  path: '/users',
  body: (n: number): Record<string, unknown> => ({ email: `crash-${n}@example.com`, name: `Crash test ${n}` })
}

const WORKERS = 4
/** Pause between two writes of a worker, and between two tries of one write. */
const PACE = 50
const RETRY_PAUSE = 100
/** Bounds on the load, whatever happens: writes, tries of one write, and the whole load's time. */
const MAX_WRITES = 3000
const MAX_TRIES = 200
const MAX_LOAD_TIME = 90_000
/** Writes before the crash, and after the database is back. */
const BEFORE = 1500
const AFTER = 2000
/** A client gives up on a request after this; "fail fast" is measured against it. */
const CLIENT_TIMEOUT = 10_000
const FAIL_FAST = 4000
const DOWN_FOR = 5000
const BACK_WITHIN = 5000

interface Attempt {
  start: number
  end: number
  /** 0: no HTTP answer (connection error or client timeout). */
  status: number
  contentType: string | null
  retryAfter: string | null
  body: Record<string, unknown> | null
  error?: string
}

interface Write {
  n: number
  key: string
  body: Record<string, unknown>
  attempts: Attempt[]
  /** The id of every 201 this write got (one, if idempotency holds). */
  ids: Set<string>
}

const now = (): number => performance.now()

async function call (url: string, init: RequestInit = {}): Promise<Attempt> {
  const start = now()
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(CLIENT_TIMEOUT) })
    const text = await res.text()
    let body: Record<string, unknown> | null = null
    try { body = JSON.parse(text) as Record<string, unknown> } catch {}
    return { start, end: now(), status: res.status, contentType: res.headers.get('content-type'), retryAfter: res.headers.get('retry-after'), body }
  } catch (err) {
    return { start, end: now(), status: 0, contentType: null, retryAfter: null, body: null, error: String((err as Error).cause ?? err) }
  }
}

t.test('the database crashes under a write load: fail fast with 503, recover alone, lose nothing, duplicate nothing', async (t) => {
  // An embedded PostgreSQL of this test's own, under .data/.
  await mkdir(join(rootDir, '.data'), { recursive: true })
  const dataDir = await mkdtemp(join(rootDir, '.data', 'crash-postgres-'))
  await chmod(dataDir, 0o755)
  const database = await startEmbeddedPostgres(join(dataDir, 'pg'), { database: 'roster' })
  t.teardown(async () => {
    await database.stop()
    await rm(dataDir, { recursive: true, force: true })
  })

  const env: Record<string, string> = {
    ...TEST_ENV,
    DATABASE_URL: database.url,
    JWT_PRIVATE_KEY: generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    JWT_ISSUER: 'http://roster.test',
    // Outages on loopback are refused at once; this bounds any wait for a connection (see docs/resilience.md).
    DB_CONNECTION_TIMEOUT: '1000',
    SHUTDOWN_TIMEOUT: '5000',
    SHUTDOWN_DELAY: '0'
  }

  // An admin and a session, made by an app on the same database (which also applies the migrations).
  const setup = await build(t, { databaseUrl: database.url, env: { ...env, MAIL_DISPATCHER: 'false' } })
  const session = await loginAs(setup, await createAdmin(setup))
  await setup.close()

  // The real server process.
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const run = spawnEntry('src/server.ts', { ...env, HOST: '127.0.0.1', PORT: String(port) })
  const server = run.child
  const stdout = run.stdout
  const stderr = run.stderr
  const exited = run.exited
  t.teardown(async () => {
    if (exited() === null) server.kill('SIGTERM')
    await run.exit
  })
  const logs = (): Array<Record<string, unknown>> => stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
  await waitUntil(() => exited() !== null || stdout().includes('Roster is up'), { what: 'the server to start', timeout: 60_000 })
  t.equal(exited(), null, `the server started ${stderr()}`)
  /** A wait that ends at once, and fails, if the server exits meanwhile. */
  const whileAlive = async (what: string, check: () => boolean, timeout: number): Promise<void> => {
    await waitUntil(() => {
      if (exited() !== null) throw new Error(`the server exited (${JSON.stringify(exited())}) while waiting for ${what}: ${stderr().slice(-2000)} ${stdout().slice(-2000)}`)
      return check()
    }, { what, timeout })
  }

  // The load: WORKERS clients writing unique users, each retrying a failed write with its Idempotency-Key.
  const headers = { ...session.headers, 'content-type': 'application/json' }
  const writes: Write[] = []
  // stop: no new writes (a write in progress is retried until acknowledged); abort: no more requests at all.
  const load = { stop: false, abort: false }
  const abortAt = now() + MAX_LOAD_TIME
  setTimeout(() => { load.abort = true }, MAX_LOAD_TIME).unref()
  async function write (w: Write): Promise<void> {
    for (let i = 0; i < MAX_TRIES && !load.abort; i++) {
      const attempt = await call(base + WRITE.path, { method: 'POST', headers: { ...headers, 'idempotency-key': w.key }, body: JSON.stringify(w.body) })
      w.attempts.push(attempt)
      if (attempt.status === 201) {
        w.ids.add((attempt.body as { id: string }).id)
        return
      }
      await sleep(RETRY_PAUSE)
    }
  }
  const worker = async (): Promise<void> => {
    while (!load.stop && writes.length < MAX_WRITES) {
      const n = writes.length
      const w: Write = { n, key: randomUUID(), body: WRITE.body(n), attempts: [], ids: new Set() }
      writes.push(w)
      await write(w)
      await sleep(PACE)
    }
  }
  const readiness: Attempt[] = []
  const probe = async (): Promise<void> => {
    while (!load.stop && !load.abort) {
      readiness.push(await call(`${base}/health/ready`))
      await sleep(200)
    }
  }
  const running = Promise.all([...Array.from({ length: WORKERS }, worker), probe()])
  t.teardown(async () => {
    load.abort = true
    await running
  })
  const acked = (): Attempt[] => writes.flatMap((w) => w.attempts.filter((a) => a.status === 201))

  await sleep(BEFORE)
  await whileAlive('writes to flow', () => acked().length >= 20, 30_000)
  const crashAt = now()
  await database.crash()
  const downAt = now()
  await sleep(DOWN_FOR)
  const restartAt = now()
  await database.start()
  const upAt = now()
  await whileAlive('a write to succeed after the database is back', () => acked().some((a) => a.end > upAt), BACK_WITHIN + 5000)
  const firstWriteBack = Math.min(...acked().filter((a) => a.end > upAt).map((a) => a.end)) - upAt
  await sleep(AFTER)
  await whileAlive('more writes after the crash', () => acked().filter((a) => a.start > upAt).length >= 20, 30_000)
  load.stop = true
  await running
  t.ok(now() < abortAt, 'the load ended by itself, every write acknowledged')

  t.equal(exited(), null, 'the service process never exited()')
  t.equal((await call(`${base}/health/live`)).status, 200, 'and still answers')
  t.equal((await call(`${base}/health/ready`)).status, 200, 'and is ready again')

  const attempts = writes.flatMap((w) => w.attempts)
  const noAnswer = attempts.filter((a) => a.status === 0)
  t.same(noAnswer.map((a) => a.error), [], 'every request got an answer: nothing hung, no connection was dropped')
  t.same([...new Set(attempts.map((a) => a.status))].sort(), [201, 503], 'every write answered 201 or 503')
  const failed = attempts.filter((a) => a.status === 503)
  t.ok(failed.every((a) => a.contentType?.startsWith('application/problem+json') === true && a.body?.code === 'ROSTER_SERVICE_UNAVAILABLE' && /^\d+$/.test(a.retryAfter ?? '')),
    'every 503 is problem+json with Retry-After')

  const whileDown = (a: Attempt): boolean => a.start >= downAt && a.end <= restartAt
  const down = attempts.filter(whileDown)
  t.ok(down.length >= WORKERS, `writes were tried while the database was down (${down.length})`)
  t.ok(down.every((a) => a.status === 503), 'all of them failed with 503')
  const slowest = Math.max(...down.map((a) => a.end - a.start))
  t.ok(slowest < FAIL_FAST, `fast: the slowest took ${Math.round(slowest)} ms, the client would wait ${CLIENT_TIMEOUT} ms`)
  const readyDown = readiness.filter(whileDown)
  t.ok(readyDown.length > 0 && readyDown.every((a) => a.status === 503 && a.body?.code === 'ROSTER_SERVICE_UNAVAILABLE'), `/health/ready answered 503 while the database was down (${readyDown.length} probes)`)
  t.ok(firstWriteBack < BACK_WITHIN, `writes succeed again ${Math.round(firstWriteBack)} ms after the database is back, without a restart`)

  // Nothing lost, nothing twice: every write was acknowledged once retried, always with the same user.
  t.equal(writes.filter((w) => w.ids.size === 0).length, 0, 'every write was eventually acknowledged')
  t.equal(writes.filter((w) => w.ids.size > 1).length, 0, 'each Idempotency-Key always answered the same user')
  const client = new pg.Client({ connectionString: database.url })
  await client.connect()
  t.teardown(() => client.end())
  const count = async (table: string): Promise<number> => (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n as number
  const { rows } = await client.query<{ id: string, email: string }>('SELECT id, email FROM users')
  const stored = new Map(rows.map((r) => [r.id, r.email]))
  const lost = writes.filter((w) => stored.get([...w.ids][0] as string) !== w.body.email)
  t.same(lost.map((w) => w.n), [], `every acknowledged user exists (${writes.length})`)
  t.equal(rows.length, writes.length, 'and no user exists twice or unacknowledged')
  t.equal(await count('idempotency_keys'), writes.length, 'one Idempotency-Key record per write')
  t.equal(await count('audit_events'), writes.length, 'one audit event per user')

  // Clients retrying now, with the same keys, get the first answers and create nothing.
  const replays: Attempt[] = []
  const queue = [...writes]
  await Promise.all(Array.from({ length: WORKERS }, async () => {
    for (let w = queue.shift(); w !== undefined; w = queue.shift()) {
      const replay = await call(base + WRITE.path, { method: 'POST', headers: { ...headers, 'idempotency-key': w.key }, body: JSON.stringify(w.body) })
      replays.push(replay)
      if (replay.status !== 201 || replay.body?.id !== [...w.ids][0]) t.fail(`key ${w.key} replayed ${replay.status} ${JSON.stringify(replay.body)}`)
    }
  }))
  t.equal(replays.length, writes.length, 'every write retried once more')
  t.equal(await count('users'), writes.length, 'retries created no duplicate')
  const reused = await call(base + WRITE.path, { method: 'POST', headers: { ...headers, 'idempotency-key': (writes[0] as Write).key }, body: JSON.stringify(WRITE.body(-1)) })
  t.equal(reused.status, 422, 'a key reused with another body is refused')

  // The outbox's LISTEN connection came back by itself.
  await waitUntil(() => logs().some((l) => l.msg === 'database listener reconnected'), { what: 'the outbox listener to reconnect', timeout: 10_000 })
  t.equal(exited(), null, 'still running')

  // A graceful stop still works: it waits for every checked-out pool client, so a leaked one would hang it.
  server.kill('SIGTERM')
  await waitUntil(() => exited() !== null, { what: 'the server to exit', timeout: 15_000 })
  t.same(exited(), { code: 0, signal: null }, 'SIGTERM: a clean exit, no pool client leaked')

  const lines = logs()
  const measured = {
    writes: writes.length,
    acknowledged: acked().length,
    failed503: failed.length,
    failedWhileDown: down.length,
    maxFailedLatencyMsWhileDown: Math.round(slowest),
    maxFailedLatencyMs: Math.round(Math.max(...failed.map((a) => a.end - a.start))),
    crashMs: Math.round(downAt - crashAt),
    restartMs: Math.round(upAt - restartAt),
    firstWriteAfterReturnMs: Math.round(firstWriteBack),
    readinessProbesWhileDown: readyDown.length,
    replays: replays.length,
    idleConnectionsLost: lines.filter((l) => l.msg === 'idle database connection lost').length,
    connectionErrorEvents: lines.filter((l) => l.msg === 'database connection error').length
  }
  t.comment(`database crash: ${JSON.stringify(measured)}`)
})
