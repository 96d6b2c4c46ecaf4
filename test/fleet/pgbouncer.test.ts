/**
 * Roster behind Debian's PgBouncer 1.18 in transaction pooling: the smoke
 * flow (migrations at start, register, the emailed link, confirm, login,
 * users with an Idempotency-Key, refresh, logout, the rate limit, pruning) with
 * DB_PREPARED_STATEMENTS=false and the LISTEN connection going to the server
 * directly (DATABASE_LISTEN_URL); and why the setting is needed.
 */
import t from 'tap'
import pg from 'pg'
import { build, createTestDatabase, waitForEmail } from '../helper.ts'
import { clientClass } from '../../src/infra/database.ts'
import { startPgBouncer } from './peers.ts'

const PASSWORD = 'correct horse battery staple'

/** What PgBouncer's admin console says of a database: transactions and queries it passed on. */
async function bouncerStats (url: string, database: string): Promise<{ xacts: number, queries: number }> {
  const admin = new pg.Client({ connectionString: url.replace(/\/[^/]+$/, '/pgbouncer') })
  await admin.connect()
  try {
    const { rows } = await admin.query<{ database: string, total_xact_count: string, total_query_count: string }>('SHOW STATS')
    const row = rows.find((r) => r.database === database)
    return { xacts: Number(row?.total_xact_count ?? 0), queries: Number(row?.total_query_count ?? 0) }
  } finally {
    await admin.end()
  }
}

t.test('the smoke flow through PgBouncer in transaction pooling', async (t) => {
  const direct = await createTestDatabase(t)
  const database = new URL(direct).pathname.slice(1)
  const bouncer = await startPgBouncer(t, direct, { poolSize: 3 })
  const app = await build(t, {
    databaseUrl: bouncer.url(database),
    env: { DB_PREPARED_STATEMENTS: 'false', DATABASE_LISTEN_URL: direct, AUTH_RATE_LIMIT: '20', MAIL_POLL_INTERVAL: '60000' }
  })
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'migrated at start, through the pooler')
  t.same((await app.pg.pool.query('SHOW statement_timeout')).rows, [{ statement_timeout: '5s' }], 'the statement timeout, set by PgBouncer\'s connect_query')

  const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'ann@example.com', name: 'ann', password: PASSWORD } })
  t.equal(reg.statusCode, 201, reg.body)
  // MAIL_POLL_INTERVAL is a minute: the email comes this soon only through the NOTIFY on the direct LISTEN connection.
  const email = await waitForEmail(app, 'ann@example.com')
  t.equal((await app.inject({ url: `/auth/confirm?token=${email.token}` })).statusCode, 200)
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'ann@example.com', password: PASSWORD } })
  t.equal(login.statusCode, 200, login.body)
  const pair = login.json<{ access_token: string, refresh_token: string }>()
  const auth = { authorization: `Bearer ${pair.access_token}` }

  // Users, concurrently: many requests share the pooler's three server connections.
  const created = await Promise.all(Array.from({ length: 20 }, (_, i) => app.inject({ method: 'POST', url: '/users', headers: auth, payload: { email: `u${i}@example.com`, name: `User ${i}` } })))
  t.same(created.map((r) => r.statusCode), Array(20).fill(201), 'twenty users created at once')
  const key = { ...auth, 'idempotency-key': 'pgbouncer-key-1' }
  const first = await app.inject({ method: 'POST', url: '/users', headers: key, payload: { email: 'kept@example.com' } })
  const replay = await app.inject({ method: 'POST', url: '/users', headers: key, payload: { email: 'kept@example.com' } })
  t.equal(first.statusCode, 201)
  t.equal(replay.headers['idempotent-replayed'], 'true')
  t.equal(replay.body, first.body)
  const page = await app.inject({ url: '/users?limit=5&count=true', headers: auth })
  t.equal(page.statusCode, 200)
  t.equal(page.headers['x-total-count'], '21')
  const next = /<([^>]+)>; rel="next"/.exec(page.headers.link as string)?.[1] as string
  t.equal((await app.inject({ url: next, headers: auth })).statusCode, 200, 'the next page, by its signed cursor')
  const id = first.json<{ id: string }>().id
  const patched = await app.inject({ method: 'PATCH', url: `/users/${id}`, headers: { ...auth, 'if-match': `"${id}.1"` }, payload: { active: false } })
  t.equal(patched.statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${id}`, headers: { ...auth, 'if-match': `"${id}.2"` } })).statusCode, 204)
  const events = (await app.inject({ url: '/audit-events?limit=100', headers: auth })).json<Array<{ targetType: string }>>()
  t.equal(events.filter((e) => e.targetType === 'user').length, 23, 'every change of a user audited')

  // Refresh, then logout: the session ends, its access token with it.
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: pair.refresh_token } })
  t.equal(refreshed.statusCode, 200)
  const bearer = { authorization: `Bearer ${refreshed.json<{ access_token: string }>().access_token}` }
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer })).statusCode, 204)
  t.equal((await app.inject({ url: '/auth/me', headers: bearer })).statusCode, 401)

  // The rate limit counts through the pooler too; pruning takes its transaction-level lock through it.
  const statuses = []
  for (let i = 0; i < 22; i++) statuses.push((await app.inject({ method: 'POST', url: '/auth/password/forgot', remoteAddress: '203.0.113.50', payload: { email: 'x@example.com' } })).statusCode)
  t.same(statuses.slice(19), [202, 429, 429])
  t.type(await app.retention.run(), 'object', 'a pruning run')

  const stats = await bouncerStats(bouncer.url(database), database)
  t.ok(stats.xacts > 100, `PgBouncer passed on ${stats.xacts} transactions, ${stats.queries} queries`)
  t.notMatch(bouncer.log(), /prepared statement|unsupported startup parameter/, 'PgBouncer logged no protocol problem')
})

t.test('why DB_PREPARED_STATEMENTS=false: two clients sharing one server connection', async (t) => {
  const direct = await createTestDatabase(t)
  const database = new URL(direct).pathname.slice(1)
  const bouncer = await startPgBouncer(t, direct, { poolSize: 1 })
  const statement = { name: 'roster_probe', text: 'SELECT $1::int AS n', values: [1] }
  const clients = async (prepared: boolean): Promise<pg.Client[]> => {
    const Client = clientClass(prepared)
    const both = [new Client({ connectionString: bouncer.url(database) }), new Client({ connectionString: bouncer.url(database) })]
    await Promise.all(both.map(async (c) => { await c.connect() }))
    t.teardown(async () => { await Promise.all(both.map(async (c) => { await c.end() })) })
    return both
  }
  const [a, b] = await clients(true) as [pg.Client, pg.Client]
  await a.query(statement)
  await t.rejects(b.query(statement), { code: '42P05', message: /prepared statement "roster_probe" already exists/ }, 'named: the second client parses a name the server connection already has')
  const [c, d] = await clients(false) as [pg.Client, pg.Client]
  t.same((await c.query(statement)).rows, [{ n: 1 }])
  t.same((await d.query(statement)).rows, [{ n: 1 }], 'unnamed: both work')
  const cursor = new pg.Query('SELECT 2 AS n')
  t.same(await new Promise((resolve, reject) => { c.query(cursor); cursor.on('row', (row) => { resolve(row) }); cursor.on('error', reject) }), { n: 2 }, 'a Submittable passes through untouched')
})
