import t from 'tap'
import pg from 'pg'
import { build, createAdmin, loginAs, type TestApp } from './helper.ts'
import { freePort } from '../db/embedded.ts'
import { COLLECT_TIMEOUT, UNMATCHED_ROUTE } from '../plugins/metrics.ts'
import { hashToken } from '../src/infra/crypto.ts'
import { transaction, UNNAMED } from '../src/infra/database.ts'
import { LOCKOUT_KEYS, LOGIN_OUTCOMES } from '../src/sessions/service.ts'
import { CLIENT_TOKEN_OUTCOMES } from '../src/clients/service.ts'
import { clientToken, createClient, enrolTotp } from './access/helpers.ts'

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

t.test('login steps by outcome, lockouts by key, token requests by outcome: each counted by real requests', async (t) => {
  const app = await build(t, { env: { MAIL_DISPATCHER: 'false', LOCKOUT_THRESHOLD: '2', LOCKOUT_ACCOUNT_THRESHOLD: '5', AUTH_RATE_LIMIT: '1000' } })
  const admin = await createAdmin(app)
  const counts = async (): Promise<Record<string, Record<string, number | undefined>>> => {
    const samples = await scrape(app)
    const by = (name: string, label: string, values: readonly string[]): Record<string, number | undefined> =>
      Object.fromEntries(values.map((v) => [v, value(samples, name, { [label]: v })]))
    return {
      logins: by('roster_login_attempts_total', 'outcome', LOGIN_OUTCOMES),
      lockouts: by('roster_lockouts_total', 'key', LOCKOUT_KEYS),
      tokens: by('roster_client_tokens_total', 'outcome', CLIENT_TOKEN_OUTCOMES)
    }
  }
  t.same(await counts(), {
    logins: { success: 0, mfa_required: 0, invalid_credentials: 0, invalid_mfa_code: 0, invalid_mfa_token: 0, not_confirmed: 0, locked: 0, error: 0 },
    lockouts: { client: 0, account: 0 },
    tokens: { issued: 0, invalid_client: 0, invalid_scope: 0, unsupported_grant_type: 0 }
  }, 'every outcome and key counted from 0')
  const login = async (email: string, password: string, remoteAddress: string): Promise<{ status: number, mfaToken?: string }> => {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress })
    return { status: res.statusCode, mfaToken: res.json<{ mfa_token?: string }>().mfa_token }
  }
  const status = async (email: string, password: string, remoteAddress: string): Promise<number> => (await login(email, password, remoteAddress)).status
  t.equal(await status(admin.email, 'a wrong password, long enough', '192.0.2.1'), 401)
  t.equal(await status(admin.email, 'another wrong password, long', '192.0.2.1'), 401, 'the second wrong password locks the client key')
  t.equal(await status(admin.email, admin.password, '192.0.2.1'), 429, 'locked from that address')
  t.equal(await status(admin.email, admin.password, '192.0.2.2'), 200)
  t.equal(await status('nobody@example.com', admin.password, '192.0.2.1'), 401, 'an unknown email is a wrong password')
  const unconfirmed = await createAdmin(app, { confirmed: false })
  t.equal(await status(unconfirmed.email, unconfirmed.password, '192.0.2.3'), 403)
  const guessed = await createAdmin(app)
  for (let i = 1; i <= 5; i++) t.equal(await status(guessed.email, 'a wrong password, long enough', `198.51.100.${i}`), 401)
  t.equal(await status(guessed.email, guessed.password, '198.51.100.9'), 429, 'five addresses locked the account key')
  let expected = { success: 1, mfa_required: 0, invalid_credentials: 8, invalid_mfa_code: 0, invalid_mfa_token: 0, not_confirmed: 1, locked: 2, error: 0 }
  t.same((await counts()).lockouts, { client: 1, account: 1 })
  t.same((await counts()).logins, expected)

  // Two-factor login: the password step, a wrong code, the right code (otpauth computes it), a bad mfa_token, a malformed step.
  const enrolled = await createAdmin(app)
  const { totp } = await enrolTotp(app, await loginAs(app, enrolled))
  const first = await login(enrolled.email, enrolled.password, '203.0.113.1')
  t.equal(first.status, 200)
  const mfa = async (payload: Record<string, string>, remoteAddress: string): Promise<number> =>
    (await app.inject({ method: 'POST', url: '/auth/login/mfa', payload, remoteAddress })).statusCode
  const current = totp.generate()
  const wrong = String((Number(current) + 1) % 1_000_000).padStart(6, '0')
  t.equal(await mfa({ mfa_token: first.mfaToken as string, code: wrong }, '203.0.113.2'), 401)
  t.equal(await mfa({ mfa_token: first.mfaToken as string, code: current }, '203.0.113.3'), 200)
  t.equal(await mfa({ mfa_token: 'not.a.token', code: '123456' }, '203.0.113.4'), 401)
  t.equal(await mfa({ mfa_token: 'not.a.token' }, '203.0.113.4'), 400)
  expected = { ...expected, success: expected.success + 2, mfa_required: 1, invalid_mfa_code: 1, invalid_mfa_token: 1, error: 1 }
  t.same((await counts()).logins, expected, 'the enrolling login, the password step, each second step')
  t.same((await counts()).lockouts, { client: 1, account: 1 }, 'no key locked by the two-factor login')

  // POST /auth/token (client credentials): each outcome the grant decides.
  const owner = await loginAs(app, await createAdmin(app, { role: 'owner' }))
  const client = await createClient(app, owner, ['users:read'])
  await clientToken(app, client)
  const token = async (fields: Record<string, string>): Promise<number> => (await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ client_id: client.id, ...fields }).toString()
  })).statusCode
  t.equal(await token({ grant_type: 'client_credentials', client_secret: 'not the secret' }), 401)
  t.equal(await token({ grant_type: 'client_credentials', client_secret: client.secret, scope: 'users:write' }), 400)
  t.equal(await token({ grant_type: 'password', client_secret: client.secret }), 400)
  t.same((await counts()).tokens, { issued: 1, invalid_client: 1, invalid_scope: 1, unsupported_grant_type: 1 })
})

/** The statements of logins, refreshes and of the rate limit, by name, each run so far (roster_db_query_duration_seconds). */
async function authStatements (app: TestApp): Promise<Record<string, number>> {
  return Object.fromEntries((await scrape(app))
    .filter((s) => s.name === 'roster_db_query_duration_seconds_count' && /^(sessions_|rate_limit_hit$)/.test(s.labels.statement as string))
    .map((s) => [s.labels.statement, s.value]))
}

/** Those run since `before` (authStatements), by name. */
async function authStatementsSince (app: TestApp, before: Record<string, number>): Promise<Record<string, number>> {
  return Object.fromEntries(Object.entries(await authStatements(app)).map(([name, n]) => [name, n - (before[name] ?? 0)]).filter(([, n]) => n !== 0))
}

t.test('a login is two statements, the /auth rate-limit count in the first; over the limit a login counts no attempt and is no login step, a refresh uses up nothing', async (t) => {
  const app = await build(t, { env: { MAIL_DISPATCHER: 'false', WEBHOOK_DISPATCHER: 'false', AUTH_RATE_LIMIT: '3', AUTH_RATE_WINDOW: '60' } })
  const admin = await createAdmin(app)
  const post = async (url: string, payload: Record<string, string>) => await app.inject({ method: 'POST', url, payload, remoteAddress: '192.0.2.7' })
  const login = async (password: string): Promise<number> => (await post('/auth/login', { email: admin.email, password })).statusCode

  let before = await authStatements(app)
  const first = await post('/auth/login', { email: admin.email, password: admin.password })
  t.equal(first.statusCode, 200)
  t.same(await authStatementsSince(app, before), { sessions_attempt_login_counted: 1, sessions_start: 1 }, 'a login: two statements, no rate-limit count of its own')
  before = await authStatements(app)
  t.equal(await login('a wrong password, long enough'), 401)
  t.equal(await login('another wrong password, long'), 401)
  t.same(await authStatementsSince(app, before), { sessions_attempt_login_counted: 2 }, 'a wrong password: one')
  before = await authStatements(app)
  t.equal(await login(admin.password), 429, 'the fourth request from the address')
  t.same(await authStatementsSince(app, before), { sessions_attempt_login_counted: 1 }, 'over the limit: the one statement, which counted no attempt')
  t.same((await app.pg.pool.query('SELECT client, failures FROM login_throttle ORDER BY client')).rows, [{ client: '*', failures: 2 }, { client: '192.0.2.7', failures: 2 }])
  const samples = await scrape(app)
  t.same(LOGIN_OUTCOMES.map((o) => [o, value(samples, 'roster_login_attempts_total', { outcome: o })]).filter(([, n]) => n !== 0),
    [['success', 1], ['invalid_credentials', 2]], 'the refused request is no login step')

  // Refreshes from the same address: a limit of their own route's.
  before = await authStatements(app)
  let token = first.json<{ refresh_token: string }>().refresh_token
  for (const remaining of ['2', '1', '0']) {
    const res = await post('/auth/refresh', { refresh_token: token })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['x-ratelimit-remaining'], remaining)
    token = res.json<{ refresh_token: string }>().refresh_token
  }
  t.same(await authStatementsSince(app, before), { rate_limit_hit: 3, sessions_rotate: 3 }, 'a refresh: the limiter\'s count on its own (src/infra/rate-limit-store.ts says why), then the exchange')
  const over = await post('/auth/refresh', { refresh_token: token })
  t.equal(over.statusCode, 429)
  t.match(over.json(), { code: 'ROSTER_RATE_LIMITED' })
  const unused = await app.pg.pool.query('SELECT used_at FROM refresh_tokens WHERE token_hash = $1', [hashToken(token)])
  t.same(unused.rows, [{ used_at: null }], 'over the limit the token is not used up')
})

t.test('the second step of a login is two statements, its rate-limit count in the first; one refused before it is counted on its own', async (t) => {
  const app = await build(t, { env: { MAIL_DISPATCHER: 'false', WEBHOOK_DISPATCHER: 'false', AUTH_RATE_LIMIT: '4', AUTH_RATE_WINDOW: '60' } })
  const admin = await createAdmin(app)
  const { totp } = await enrolTotp(app, await loginAs(app, admin))
  const mfaToken = (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })).json<{ mfa_token: string }>().mfa_token
  const step = async (payload: Record<string, string>) => await app.inject({ method: 'POST', url: '/auth/login/mfa', payload, remoteAddress: '192.0.2.9' })
  const remaining = (res: { headers: Record<string, unknown> }): unknown => res.headers['x-ratelimit-remaining']

  let before = await authStatements(app)
  const done = await step({ mfa_token: mfaToken, code: totp.generate() })
  t.equal(done.statusCode, 200)
  t.equal(remaining(done), '3')
  t.same(await authStatementsSince(app, before), { sessions_attempt_mfa_counted: 1, sessions_start_totp: 1 }, 'two statements, no rate-limit count of its own')
  before = await authStatements(app)
  const badToken = await step({ mfa_token: 'not.a.token', code: '123456' })
  t.equal(badToken.statusCode, 401)
  t.equal(remaining(badToken), '2')
  const both = await step({ mfa_token: mfaToken, code: '123456', recovery_code: 'abcd-efgh-ijkl-mnop' })
  t.equal(both.statusCode, 400)
  t.match(both.body, /exactly one of code or recovery_code/, 'refused by the step itself, not by its schema')
  t.equal(remaining(both), '1')
  t.same(await authStatementsSince(app, before), { rate_limit_hit: 2 }, 'refused before the attempt statement: counted by the limiter\'s own')
  t.equal((await step({ mfa_token: mfaToken, code: totp.generate() })).statusCode, 401, 'the mfa_token was used up')
  const over = await step({ mfa_token: 'not.a.token', code: '123456' })
  t.equal(over.statusCode, 429, 'over the limit: 429, not the 401 its token deserves')
  t.match(over.json(), { code: 'ROSTER_RATE_LIMITED' })
  t.same((await app.pg.pool.query("SELECT hits FROM rate_limit_hits WHERE key = 'POST /auth/login/mfa 192.0.2.9'")).rows, [{ hits: 5 }])
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
