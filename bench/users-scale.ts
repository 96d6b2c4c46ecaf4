/**
 * `npm run bench:users-scale [-- --users 100000] [--samples 200] [--database-url URL]`
 *
 * `--users 1000000` for a million (loading them takes a few minutes); with
 * `--database-url` an existing database is used instead of a new embedded
 * one, and loaded only when it has no users yet (so a million users are
 * loaded once for many runs): it must hold this script's users or none.
 *
 * The users list at scale: loads N users (100,000 by default) into an
 * embedded PostgreSQL, serves the app (production options, log level warn) on
 * 127.0.0.1, and times over real HTTP, one request at a time, substring
 * searches (`q`, rare and common) and pages deep into the list in every sort
 * order. Then prints EXPLAIN (ANALYZE) of each statement as the app runs it
 * (for a search, the path it picks from the statistics: a window of the sort
 * order, the read through the search index, or both): the custom plan, and
 * for a named (prepared) statement also the generic plan PostgreSQL may switch
 * to; and checks that none uses a sequential scan. Exits non-zero when a
 * median is 20 ms or more or a plan has a Seq Scan.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import pg from 'pg'
import { startEmbeddedPostgres, leaveSignalsToServer } from '../db/embedded.ts'
import { runMigrations } from '../db/migrate.ts'
import app from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { serverOptions } from '../src/server-options.ts'
import type { PageQuery } from '../src/infra/paging/lister.ts'

const { values: args } = parseArgs({ options: { users: { type: 'string', default: '100000' }, samples: { type: 'string', default: '200' }, 'database-url': { type: 'string' } } })
const USERS = Number(args.users)
const SAMPLES = Number(args.samples)
const TARGET_MS = 20
const log = (line: string): void => { process.stderr.write(`${line}\n`) }

process.env.FASTIFY_AUTOLOAD_TYPESCRIPT = '1'
leaveSignalsToServer()
const work = await mkdtemp(join(tmpdir(), 'roster-scale-'))
await chmod(work, 0o755)
const postgres = args['database-url'] === undefined ? await startEmbeddedPostgres(join(work, 'pg'), { database: 'scale' }) : null
const databaseUrl = postgres?.url ?? args['database-url'] as string
const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 })
pool.on('error', () => { /* an idle connection ended by the server's shutdown */ })
let server: Awaited<ReturnType<typeof start>> | undefined

async function start () {
  const config = loadConfig({
    NODE_ENV: 'production',
    PUBLIC_URL: 'http://bench.invalid',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'warn',
    SECRET_KEY: randomBytes(32).toString('base64url'),
    JWT_PRIVATE_KEY: generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    MAIL_DISPATCHER: 'false',
    METRICS_ENABLED: 'false',
    DATA_DIR: work
  }, '/dev/null')
  const fastify = Fastify(serverOptions(config))
  await fastify.register(app, { config })
  await fastify.listen({ host: '127.0.0.1', port: 0 })
  return fastify
}

try {
  await runMigrations(pool)
  const present = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM users')).rows[0]?.n)
  if (present !== 0 && present !== USERS) throw new Error(`the database holds ${present} users, not ${USERS}: use another one`)
  const started = Date.now()
  const { rows: [admin] } = await pool.query<{ id: string }>("INSERT INTO admins (email, name, password_hash, confirmed_at, role) VALUES ('scale@example.com', 'scale', 'x', now(), 'owner') ON CONFLICT (lower(email)) DO UPDATE SET name = 'scale' RETURNING id")
  const adminId = (admin as { id: string }).id
  if (present === 0) await load()
  log(`${USERS} users ready in ${((Date.now() - started) / 1000).toFixed(1)} s`)

  async function load (): Promise<void> {
    log(`loading ${USERS} users…`)
    // Names: a first name from a small list plus a random hex part, so that some substrings are common and others rare.
    await pool.query(`
    INSERT INTO users (email, name, active, created_by, created_at)
    SELECT 'user' || i || '@example.com',
           CASE WHEN i % 20 = 0 THEN NULL ELSE (ARRAY['Ann', 'Bob', 'Carla', 'Dmitri', 'Eve', 'Farid', 'Grace', 'Hiro'])[1 + i % 8] || ' ' || substr(md5(i::text), 1, 10) END,
           i % 7 <> 0, $2, timestamptz '2024-01-01' + i * interval '1 second' + (random() * interval '1 second')
    FROM generate_series(1, $1) AS i`, [USERS, adminId])
    await pool.query('ANALYZE')
  }

  server = await start()
  const { port } = server.server.address() as { port: number }
  const base = `http://127.0.0.1:${port}`
  const { sessionId } = await server.sessions.repository.start({ adminId, ttl: { idle: 3600, absolute: 3600 }, throttle: { email: 'scale@example.com', client: '127.0.0.1', policy: { threshold: 10, accountThreshold: 50, window: 900, duration: 900 } } }) as { sessionId: string }
  const headers = { authorization: `Bearer ${server.auth.issueAccessToken(adminId, sessionId, Math.floor(Date.now() / 1000)).accessToken}` }
  const lister = server.users.repository.lister

  /** A cursor at `position` rows into the list in this sort order. */
  async function deep (sort: string, position: number): Promise<string> {
    const desc = sort.startsWith('-')
    const field = sort.replace('-', '')
    const key = ({ createdAt: 'created_at::text', email: 'email', name: "coalesce(name, '')" } as Record<string, string>)[field] as string
    const expr = ({ createdAt: 'created_at', email: 'email', name: "coalesce(name, '')" } as Record<string, string>)[field] as string
    // OFFSET only here, to find a position to start from; the app never uses it.
    const { rows: [row] } = await pool.query<{ k: string, id: string }>(`SELECT ${key} AS k, id FROM users ORDER BY ${expr} ${desc ? 'DESC' : ''}, id ${desc ? 'DESC' : ''} OFFSET $1 LIMIT 1`, [position])
    const r = row as { k: string, id: string }
    return lister.encode({ limit: 50, sort }, r.k, r.id)
  }

  const position = Math.floor(USERS * 0.9)
  const cases: Array<{ name: string, query: PageQuery }> = [
    { name: 'first page', query: { limit: 50 } },
    { name: 'q=user12 (email, ~1% match)', query: { limit: 50, q: 'user12' } },
    { name: 'q=user99999 (one match)', query: { limit: 50, q: `user${USERS - 1}` } },
    { name: 'q=carla (name, 1/8 match)', query: { limit: 50, q: 'carla' } },
    { name: 'q=3f9a (name hex, rare)', query: { limit: 50, q: '3f9a' } },
    { name: 'q=example (every row)', query: { limit: 50, q: 'example' } },
    { name: 'q=zzzz (no match)', query: { limit: 50, q: 'zzzz' } },
    { name: 'q=user12&sort=-email', query: { limit: 50, q: 'user12', sort: '-email' } },
    { name: 'q=ann&active=false', query: { limit: 50, q: 'ann', active: false } }
  ]
  for (const sort of ['createdAt', '-createdAt', 'email', '-email', 'name', '-name']) {
    cases.push({ name: `deep page (row ${position}), sort=${sort}`, query: { limit: 50, sort, cursor: await deep(sort, position) } })
  }
  cases.push({ name: 'deep page, q=user1 (email)', query: { limit: 50, q: 'user1', cursor: undefined } })

  const url = (q: PageQuery): string => {
    const qs = new URLSearchParams()
    for (const [k, v] of Object.entries(q)) if (v !== undefined) qs.set(k, String(v))
    return `${base}/users?${qs.toString()}`
  }
  async function time (target: string): Promise<{ ms: number, rows: number }> {
    const t0 = process.hrtime.bigint()
    const res = await fetch(target, { headers })
    const body = await res.json() as unknown[]
    if (res.status !== 200) throw new Error(`${target}: ${res.status} ${JSON.stringify(body)}`)
    return { ms: Number(process.hrtime.bigint() - t0) / 1e6, rows: body.length }
  }
  const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] as number

  // The deep search page: follow one Link deep into the results of q=user1.
  {
    let target: string | null = url({ limit: 200, q: 'user1' })
    let next: string | null = null
    for (let i = 0; i < 20 && target !== null; i++) {
      const res: Response = await fetch(target, { headers })
      await res.arrayBuffer()
      const link: string | null = res.headers.get('link')
      next = link === null ? null : new URLSearchParams((/<[^?]+\?([^>]+)>/.exec(link) as RegExpExecArray)[1]).get('cursor')
      target = link === null ? null : `${base}${(/<([^>]+)>/.exec(link) as RegExpExecArray)[1] as string}`
    }
    const last = cases.at(-1) as { query: PageQuery }
    last.query = { limit: 200, q: 'user1', cursor: next ?? undefined }
  }

  const rows: string[][] = [['request', 'rows', 'median ms', 'p95 ms', 'max ms', 'plan', 'path', 'ok']]
  let failed = false
  for (const c of cases) {
    const target = url(c.query)
    for (let i = 0; i < 20; i++) await time(target) // warm-up: connections, prepared statements, caches
    const samples: number[] = []
    let n = 0
    for (let i = 0; i < SAMPLES; i++) { const r = await time(target); samples.push(r.ms); n = r.rows }

    // The statements exactly as the app runs them now (a search: the plan it picks from the statistics,
    // the window of that size or the read through the search index, and that read after a window that did
    // not fill the page). They are prepared statements, which PostgreSQL may run with a generic plan after
    // a few executions: show that plan as well as the custom one.
    const how = await lister.plan(c.query)
    const { page: window, fallback } = lister.statements(c.query, how?.window)
    const page = how?.first === 'index' ? fallback ?? window : window
    const planned = how === null ? 'page' : `${how.first === 'index' ? 'index' : `window of ${how.window}, then index if short`} (estimated ${((how.fraction ?? NaN) * 100).toFixed(2)} % match)`
    const client = await pool.connect()
    const plans: string[] = []
    try {
      // The index read follows a window only when the window did not fill the page.
      const windowFilled = how?.first === 'window' && (await client.query(window)).rows.length > c.query.limit
      for (const [what, statement] of [['statement', page], ['fallback statement', how?.first !== 'window' || windowFilled ? null : fallback]] as const) {
        if (statement === null) continue
        // An unnamed statement is planned for its values every time: only named ones may get a generic plan.
        for (const mode of statement.name === undefined ? ['force_custom_plan'] : ['force_custom_plan', 'force_generic_plan']) {
          await client.query(`SET plan_cache_mode = ${mode}`)
          await client.query(`PREPARE scale_probe AS ${statement.text}`)
          const params = (statement.values as unknown[]).map((v) => v === null ? 'NULL' : `'${String(v).replace(/'/g, "''")}'`).join(', ')
          const { rows: plan } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE scale_probe(${params})`)
          await client.query('DEALLOCATE scale_probe')
          plans.push(`  ${what}, ${mode === 'force_custom_plan' ? 'custom plan' : 'generic plan'}:\n${plan.map((p) => `    ${p['QUERY PLAN']}`).join('\n')}`)
        }
      }
    } finally {
      await client.query('RESET plan_cache_mode')
      client.release()
    }
    const seqScan = plans.some((p) => /Seq Scan/.test(p))
    const median = pct(samples, 0.5)
    const ok = median < TARGET_MS && !seqScan
    failed ||= !ok
    rows.push([c.name, String(n), median.toFixed(2), pct(samples, 0.95).toFixed(2), Math.max(...samples).toFixed(2), seqScan ? 'SEQ SCAN' : 'index', planned, ok ? 'ok' : 'MISSED'])
    process.stdout.write(`\n## ${c.name}: ${planned}\n${page.text}\n${plans.join('\n')}\n`)
  }

  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)))
  process.stdout.write(`\n${USERS} users, ${SAMPLES} sequential requests each over HTTP on 127.0.0.1 (target: median < ${TARGET_MS} ms, no Seq Scan)\n`)
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i] as number)).join('  ')}\n`)
  await cleanup()
  process.exit(failed ? 1 : 0)
} catch (err) {
  await cleanup()
  throw err
}

async function cleanup (): Promise<void> {
  await server?.close()
  await pool.end()
  await postgres?.stop()
  await rm(work, { recursive: true, force: true })
}
