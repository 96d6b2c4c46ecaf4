import t from 'tap'
import pg from 'pg'
import { build, createAdmin, loginAs, type TestApp } from './helper.ts'
import { freePort } from '../db/embedded.ts'
import { COLLECT_TIMEOUT, UNMATCHED_ROUTE } from '../plugins/metrics.ts'
import { transaction, UNNAMED } from '../src/infra/database.ts'
import { LOGIN_OUTCOMES } from '../src/sessions/service.ts'

interface Sample { name: string, labels: Record<string, string>, value: number }

/** Parses the Prometheus text exposition format (the subset prom-client writes). */
function parse (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k as string] = v as string
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) })
  }
  return samples
}

function value (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
}

async function scrape (app: TestApp): Promise<Sample[]> {
  const res = await app.inject({ url: '/metrics' })
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}: ${res.body}`)
  return parse(res.body)
}

t.test('GET /metrics: Prometheus text, requests by route pattern and status, process, pool and outbox', async (t) => {
  const app = await build(t, { env: { MAIL_DISPATCHER: 'false' } })
  for (let i = 0; i < 3; i++) await app.inject({ url: '/health/live' })
  await app.inject({ url: '/no/such/thing/1' })
  await app.inject({ url: '/no/such/thing/2?x=1' })
  await app.inject({ method: 'DELETE', url: '/' })
  await transaction(app.db, async (tx) => {
    await app.mail.enqueue(tx, { template: 'confirm_account', to: 'm1@example.com', data: { name: 'M1', token: 't1' } })
    await app.mail.enqueue(tx, { template: 'confirm_account', to: 'm2@example.com', data: { name: 'M2', token: 't2' } })
  })

  const res = await app.inject({ url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(res.body, /# TYPE http_request_duration_seconds histogram/)
  const s = parse(res.body)

  t.equal(value(s, 'http_requests_total', { method: 'GET', route: '/health/live', status_code: '200' }), 3)
  t.equal(value(s, 'http_request_duration_seconds_count', { method: 'GET', route: '/health/live', status_code: '200' }), 3)
  t.equal(value(s, 'http_request_duration_seconds_bucket', { route: '/health/live', le: '+Inf' }), 3)
  t.ok((value(s, 'http_request_duration_seconds_sum', { route: '/health/live' }) as number) > 0)
  t.equal(value(s, 'http_requests_total', { method: 'GET', route: UNMATCHED_ROUTE, status_code: '404' }), 2, 'every 404 in one series')
  t.equal(value(s, 'http_requests_total', { method: 'DELETE', route: UNMATCHED_ROUTE, status_code: '405' }), 1)
  t.notOk(s.some((x) => x.labels.route?.includes('/no/such')), 'raw URLs never become labels')

  for (const name of ['nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'process_cpu_user_seconds_total', 'process_resident_memory_bytes']) {
    t.type(value(s, name), 'number', `${name} (default metrics)`)
  }
  t.equal(value(s, 'roster_info', { version: '1.0.0' }), 1)
  t.equal(value(s, 'roster_draining'), 0)
  t.ok((value(s, 'roster_db_pool_connections') as number) >= 1)
  t.type(value(s, 'roster_db_pool_idle_connections'), 'number')
  t.equal(value(s, 'roster_db_pool_waiting_clients'), 0)
  t.equal(value(s, 'roster_db_pool_max_connections'), 10)
  t.equal(value(s, 'roster_mail_emails_total', { event: 'queued' }), 2)
  t.equal(value(s, 'roster_mail_emails_total', { event: 'sent' }), 0)
  t.equal(value(s, 'roster_mail_outbox_depth', { state: 'pending' }), 2)
  t.equal(value(s, 'roster_mail_outbox_depth', { state: 'failed' }), 0)
  t.ok((value(s, 'roster_mail_outbox_oldest_pending_seconds') as number) > 0, 'the oldest pending email has waited')
  t.equal(value(s, 'roster_mail_provider_available'), 1)

  await app.mail.runOnce()
  app.draining = true
  const after = await scrape(app)
  t.equal(value(after, 'roster_mail_emails_total', { event: 'sent' }), 2)
  t.equal(value(after, 'roster_mail_outbox_depth', { state: 'pending' }), 0)
  t.equal(value(after, 'roster_mail_outbox_oldest_pending_seconds'), 0, 'nothing waits')
  t.equal(value(after, 'roster_draining'), 1)
  t.equal(value(after, 'http_requests_total', { route: '/metrics', status_code: '200' }), 1, 'the previous scrape is counted too')

  const doc = (await app.inject({ url: '/apidocs/json' })).json()
  t.ok(doc.paths['/metrics'].get.responses['200'].content['text/plain'], 'documented on the main port')
  t.notOk(doc.paths['/metrics'].get.security, 'public: Prometheus scrapers do not log in')
})

t.test('database statements by name, waits for a connection, refresh-token reuse', async (t) => {
  const app = await build(t, { env: { MAIL_DISPATCHER: 'false' } })
  const admin = await createAdmin(app)
  const session = await loginAs(app, admin)
  const before = await scrape(app)
  t.equal(value(before, 'roster_refresh_token_reuse_total'), 0, 'counted from 0, so that rate() sees the first one')
  const named = before.filter((x) => x.name === 'roster_db_query_duration_seconds_count').map((x) => x.labels.statement)
  t.ok(named.includes('sessions_start'), `by statement name: ${named.join(', ')}`)
  t.ok(named.includes(UNNAMED), 'statements without a name share one label value')

  // One named statement, then one unnamed, through the pool and inside a transaction.
  for (const query of [{ name: 'metrics_probe', text: 'SELECT 1' }, { text: 'SELECT 2' }]) await app.db.query(query)
  await transaction(app.db, async (tx) => { await tx.query({ name: 'metrics_probe', text: 'SELECT 1' }) })
  const waits = value(before, 'roster_db_pool_wait_seconds_count') as number
  t.ok(waits > 0, `${waits} waits for a connection`)
  const unnamed = value(before, 'roster_db_query_duration_seconds_count', { statement: UNNAMED }) as number
  // The scrape's own depth query runs once between the two.
  const after = await scrape(app)
  t.equal(value(after, 'roster_db_query_duration_seconds_count', { statement: 'metrics_probe' }), 2)
  t.ok((value(after, 'roster_db_query_duration_seconds_sum', { statement: 'metrics_probe' }) as number) > 0)
  t.equal(value(after, 'roster_db_query_duration_seconds_bucket', { statement: 'metrics_probe', le: '+Inf' }), 2)
  t.equal(value(after, 'roster_db_query_duration_seconds_count', { statement: UNNAMED }), unnamed + 3, 'SELECT 2, BEGIN, COMMIT')
  t.equal(value(after, 'roster_db_pool_wait_seconds_count'), waits + 4, 'two queries, one transaction, one depth query')
  const failing = await app.db.query({ name: 'metrics_failing', text: 'SELECT 1/0' }).catch((err: Error) => err)
  t.match(failing, { code: '22012' })
  t.equal(value(await scrape(app), 'roster_db_query_duration_seconds_count', { statement: 'metrics_failing' }), 1, 'a failed statement is timed too')

  // A used refresh token presented again, well after its use: the session is revoked and counted.
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: session.refreshToken } })).statusCode, 200)
  await app.db.query("UPDATE refresh_tokens SET used_at = now() - interval '1 hour' WHERE used_at IS NOT NULL")
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: session.refreshToken } })).statusCode, 401)
  t.equal(value(await scrape(app), 'roster_refresh_token_reuse_total'), 1)
})

t.test('login steps by outcome: roster_login_attempts_total', async (t) => {
  const app = await build(t, { env: { MAIL_DISPATCHER: 'false', LOCKOUT_THRESHOLD: '2', AUTH_RATE_LIMIT: '1000' } })
  const admin = await createAdmin(app)
  const outcomes = async (): Promise<Record<string, number | undefined>> => {
    const samples = await scrape(app)
    return Object.fromEntries(LOGIN_OUTCOMES.map((o) => [o, value(samples, 'roster_login_attempts_total', { outcome: o })]))
  }
  t.same(await outcomes(), { success: 0, mfa_required: 0, invalid_credentials: 0, invalid_mfa_code: 0, invalid_mfa_token: 0, not_confirmed: 0, locked: 0, error: 0 }, 'every outcome counted from 0')
  const login = async (email: string, password: string, remoteAddress = '192.0.2.1'): Promise<number> =>
    (await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress })).statusCode
  t.equal(await login(admin.email, 'a wrong password, long enough'), 401)
  t.equal(await login(admin.email, 'another wrong password, long'), 401)
  t.equal(await login(admin.email, admin.password), 429, 'locked from that address')
  t.equal(await login(admin.email, admin.password, '192.0.2.2'), 200)
  const unconfirmed = await createAdmin(app, { confirmed: false })
  t.equal(await login(unconfirmed.email, unconfirmed.password, '192.0.2.3'), 403)
  const mfa = (payload: Record<string, string>) => app.inject({ method: 'POST', url: '/auth/login/mfa', payload })
  t.equal((await mfa({ mfa_token: 'not.a.token', code: '123456' })).statusCode, 401)
  t.equal((await mfa({ mfa_token: 'not.a.token' })).statusCode, 400)
  t.same(await outcomes(), { success: 1, mfa_required: 0, invalid_credentials: 2, invalid_mfa_code: 0, invalid_mfa_token: 1, not_confirmed: 1, locked: 1, error: 1 })
})

t.test('the mail provider unreachable shows as roster_mail_provider_available 0', async (t) => {
  const closedPort = await freePort()
  const app = await build(t, { env: { MAIL_DISPATCHER: 'false', MAIL_TRANSPORT: 'smtp', MAIL_HOST: '127.0.0.1', MAIL_PORT: String(closedPort), MAIL_SEND_TIMEOUT: '2000' } })
  await app.mail.enqueue(app.db, { template: 'confirm_account', to: 'down@example.com', data: { name: 'Down', token: 'x' } })
  await app.mail.runOnce()
  t.equal(app.mail.providerAvailable, false)
  const s = await scrape(app)
  t.equal(value(s, 'roster_mail_provider_available'), 0)
  t.equal(value(s, 'roster_mail_outbox_depth', { state: 'pending' }), 1, 'the email waits, it is not lost')
})

t.test('a database holding a lock on the outbox delays no scrape beyond the collect timeout', async (t) => {
  // Without the bound, a scrape would wait as long as the statement may run: here, longer than the test.
  const app = await build(t, { env: { MAIL_DISPATCHER: 'false', DB_STATEMENT_TIMEOUT: '3600000' } })
  const locker = new pg.Client({ connectionString: app.databaseUrl })
  await locker.connect()
  t.teardown(() => locker.end())
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE email_outbox IN ACCESS EXCLUSIVE MODE')

  const first = await scrape(app)
  t.equal(value(first, 'roster_mail_outbox_depth'), undefined, 'no stale or made-up depth')
  t.equal(value(first, 'roster_mail_outbox_depth_errors_total'), 1)
  t.type(value(first, 'roster_db_pool_connections'), 'number', 'the rest is there')

  const second = await scrape(app)
  t.equal(value(second, 'roster_mail_outbox_depth_errors_total'), 2)
  const { rows } = await locker.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'roster' AND wait_event_type = 'Lock' AND query LIKE '%email_outbox%'")
  t.equal(rows[0]?.n, 1, `both scrapes answered (after ${COLLECT_TIMEOUT} ms) while the one depth query they share still waits`)

  await locker.query('COMMIT')
  let depth: number | undefined
  for (let i = 0; i < 50 && depth === undefined; i++) depth = value(await scrape(app), 'roster_mail_outbox_depth', { state: 'pending' })
  t.equal(depth, 0, 'the depth is back once the database answers')
})

t.test('an unreachable database: /metrics still answers 200, without the depth', async (t) => {
  const app = await build(t, {
    databaseUrl: 'postgres://nobody:x@127.0.0.1:1/none',
    env: { MIGRATE_ON_START: 'false', DB_CONNECTION_TIMEOUT: '500', MAIL_DISPATCHER: 'false' }
  })
  const s = await scrape(app)
  t.equal(value(s, 'roster_mail_outbox_depth'), undefined)
  t.equal(value(s, 'roster_mail_outbox_depth_errors_total'), 1)
  t.equal(value(s, 'roster_db_pool_waiting_clients'), 0)
})

t.test('METRICS_PORT: a listener of its own, closed with the app; nothing on the main port', async (t) => {
  const port = await freePort()
  const app = await build(t, { env: { METRICS_PORT: String(port), HOST: '127.0.0.1' } })
  t.equal(app.metrics.port, port)
  t.equal((await app.inject({ url: '/metrics' })).statusCode, 404, 'not on the main port')
  t.notOk((await app.inject({ url: '/apidocs/json' })).json().paths['/metrics'], 'not in the API docs')

  await app.inject({ url: '/health/live' })
  const res = await fetch(`http://127.0.0.1:${port}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  t.equal(value(parse(await res.text()), 'http_requests_total', { route: '/health/live' }), 1)
  const head = await fetch(`http://127.0.0.1:${port}/metrics?x=1`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404)
  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status, 404)

  // A keep-alive connection left open does not hold the close up.
  const agentRes = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { connection: 'keep-alive' } })
  await agentRes.text()
  await app.close()
  await t.rejects(fetch(`http://127.0.0.1:${port}/metrics`), 'closed with the app')
})

t.test('METRICS_PORT already taken: the app does not start', async (t) => {
  const port = await freePort()
  const first = await build(t, { env: { METRICS_PORT: String(port), HOST: '127.0.0.1' } })
  t.equal(first.metrics.port, port)
  await t.rejects(build(t, { env: { METRICS_PORT: String(port), HOST: '127.0.0.1' } }), { code: 'EADDRINUSE' })
})

t.test('METRICS_ENABLED=false: no /metrics anywhere', async (t) => {
  const app = await build(t, { env: { METRICS_ENABLED: 'false' } })
  const res = await app.inject({ url: '/metrics' })
  t.equal(res.statusCode, 404)
  t.same(parse(await app.metrics.render()), [], 'nothing collected')
  t.equal(app.metrics.port, null)
})
