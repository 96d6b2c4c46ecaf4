import t from 'tap'
import { parseOptions } from '@node-rs/argon2'
import { build, createAdmin, createTestDatabase, loginAs, type TestApp } from '../helper.ts'

const login = (email: string, password: string, headers: Record<string, string> = {}) =>
  ({ method: 'POST' as const, url: '/auth/login', headers, payload: { email, password } })

/** A problem body without the parts that name the request. */
const shape = (body: Record<string, unknown>) => { const { requestId: _r, ...rest } = body; return rest }

t.test('unknown email and wrong password: the same status and body', async (t) => {
  const app = await build(t)
  const admin = await createAdmin(app)
  const wrong = await app.inject(login(admin.email, 'wrong password, but long'))
  const unknown = await app.inject(login('nobody@example.com', 'wrong password, but long'))
  t.equal(wrong.statusCode, 401)
  t.equal(unknown.statusCode, 401)
  t.same(shape(wrong.json()), shape(unknown.json()))
  t.match(wrong.json(), { code: 'ROSTER_INVALID_CREDENTIALS', detail: 'The email or the password is wrong' })
  t.equal(wrong.headers['content-type'], unknown.headers['content-type'])
  t.notOk(wrong.headers['retry-after'])

  const ok = await app.inject(login(admin.email.toUpperCase(), admin.password))
  t.equal(ok.statusCode, 200)
  const { rows } = await app.pg.pool.query('SELECT email FROM login_throttle')
  t.same(rows, [{ email: 'nobody@example.com' }], 'a login clears its failures; the unknown email keeps its count')
})

t.test('lockout: after LOCKOUT_THRESHOLD failures the email answers 429 with Retry-After, known or not', async (t) => {
  const app = await build(t, { env: { LOCKOUT_THRESHOLD: '3', LOCKOUT_WINDOW: '900', LOCKOUT_DURATION: '900' } })
  const admin = await createAdmin(app)
  for (const email of [admin.email, 'ghost@example.com']) {
    for (let i = 0; i < 3; i++) t.equal((await app.inject(login(email, 'guess number ' + String(i)))).statusCode, 401, `failure ${i + 1}`)
    const locked = await app.inject(login(email, email === admin.email ? admin.password : 'any password at all'))
    t.equal(locked.statusCode, 429, 'locked, even with the right password')
    t.match(locked.headers['content-type'], /problem\+json/)
    t.match(locked.json(), { code: 'ROSTER_LOGIN_LOCKED', status: 429, detail: /try again in \d+ seconds/ })
    const retry = Number(locked.headers['retry-after'])
    t.ok(retry > 890 && retry <= 900, `Retry-After ${retry}`)
  }
  const { rows: [row] } = await app.pg.pool.query('SELECT failures FROM login_throttle WHERE email = $1', [admin.email])
  t.equal(row.failures, 3, 'attempts while locked are not counted')

  // a second instance shares the counters (they are in Postgres)
  const other = await build(t, { databaseUrl: app.databaseUrl, env: { LOCKOUT_THRESHOLD: '3' } })
  t.equal((await other.inject(login(admin.email, admin.password))).statusCode, 429)

  // the lock ends: a correct password logs in and clears the count
  await app.pg.pool.query("UPDATE login_throttle SET locked_until = now() - interval '1 second'")
  t.equal((await app.inject(login(admin.email, admin.password))).statusCode, 200)
  t.same((await app.pg.pool.query('SELECT * FROM login_throttle WHERE email = $1', [admin.email])).rows, [])

  // after a lock, counting starts over
  t.equal((await app.inject(login('ghost@example.com', 'one more guess'))).statusCode, 401)
  const { rows: [ghost] } = await app.pg.pool.query("SELECT failures, locked_until FROM login_throttle WHERE email = 'ghost@example.com'")
  t.same(ghost, { failures: 1, locked_until: null })

  // failures older than the window are forgotten
  await app.inject(login(admin.email, 'guess one'))
  await app.inject(login(admin.email, 'guess two'))
  await app.pg.pool.query("UPDATE login_throttle SET window_started_at = now() - interval '901 seconds' WHERE email = $1", [admin.email])
  t.equal((await app.inject(login(admin.email, 'guess three'))).statusCode, 401)
  t.equal((await app.inject(login(admin.email, admin.password))).statusCode, 200, 'not locked: the window had started over')
})

t.test('hashes made with other argon2 parameters are upgraded at login', async (t) => {
  const first = await build(t)
  const admin = await createAdmin(first)
  const before = (await first.pg.pool.query('SELECT password_hash FROM admins WHERE id = $1', [admin.id])).rows[0].password_hash
  t.match(parseOptions(before), { memoryCost: 1024, timeCost: 1 })

  const upgraded = await build(t, { databaseUrl: first.databaseUrl, env: { ARGON2_TIME: '2' } })
  t.equal((await upgraded.inject(login(admin.email, admin.password))).statusCode, 200)
  const after = (await first.pg.pool.query('SELECT password_hash FROM admins WHERE id = $1', [admin.id])).rows[0].password_hash
  t.match(parseOptions(after), { memoryCost: 1024, timeCost: 2, parallelism: 1 })
  t.not(after, before)
  t.equal((await upgraded.inject(login(admin.email, admin.password))).statusCode, 200, 'the new hash verifies')
  t.equal((await upgraded.pg.pool.query('SELECT password_hash FROM admins WHERE id = $1', [admin.id])).rows[0].password_hash, after, 'and is kept')
})

t.test('login validates its body and remembers the client', async (t) => {
  const app = await build(t, { env: { TRUST_PROXY: '1' } })
  const admin = await createAdmin(app)
  const bad = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'not an email', password: '' } })
  t.equal(bad.statusCode, 400)
  t.same(bad.json().errors.map((e: { path: string }) => e.path).sort(), ['/body/email', '/body/password'])
  t.same((await app.pg.pool.query('SELECT * FROM login_throttle')).rows, [], 'an invalid request counts no attempt')

  const res = await app.inject(login(admin.email, admin.password, { 'user-agent': 'agent/1.0', 'x-forwarded-for': '203.0.113.9' }))
  t.equal(res.statusCode, 200)
  const { rows } = await app.pg.pool.query('SELECT user_agent, ip FROM sessions')
  t.same(rows, [{ user_agent: 'agent/1.0', ip: '203.0.113.9' }], 'the client address from one trusted proxy hop')
})

t.test('every /auth route is rate limited per client IP, answered as problem+json with Retry-After', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '2', AUTH_RATE_WINDOW: '60', TRUST_PROXY: '1' } })
  const admin = await createAdmin(app)
  const doc = (await app.inject({ url: '/apidocs/json' })).json() as { paths: Record<string, Record<string, { security?: unknown }>> }
  const operations = Object.entries(doc.paths).filter(([path]) => path.startsWith('/auth/'))
    .flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method: method.toUpperCase(), secured: op.security !== undefined })))
  t.ok(operations.length >= 16, `${operations.length} operations`)
  for (const { path, method, secured } of operations) {
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) {
      // A fresh session for each request: a logout or delete must not turn the next one into a 401.
      const headers: Record<string, string> = { 'x-forwarded-for': '198.51.100.7' }
      if (secured) headers.authorization = (await loginAs(app, admin)).headers.authorization
      const res = await app.inject({ method: method as 'GET', url: `${path.replace('{id}', '00000000-0000-4000-8000-000000000000')}?token=x`, headers, payload: method === 'GET' ? undefined : {} })
      statuses.push(res.statusCode)
      if (i === 2) {
        t.equal(res.statusCode, 429, `${method} ${path}: third request limited (${statuses.join(', ')})`)
        t.match(res.headers['content-type'], /application\/problem\+json/)
        t.match(res.json(), { code: 'ROSTER_RATE_LIMITED', status: 429, detail: /retry in/ })
        t.ok(Number(res.headers['retry-after']) > 0, 'Retry-After')
      }
    }
  }
  const fromElsewhere = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-forwarded-for': '198.51.100.8' }, payload: { email: admin.email, password: admin.password } })
  t.equal(fromElsewhere.statusCode, 200, 'another client address has its own budget')
  for (let i = 0; i < 5; i++) t.equal((await app.inject({ url: '/health/live', headers: { 'x-forwarded-for': '198.51.100.7' } })).statusCode, 200, 'health is not limited')
})

t.test('the /auth rate limit is counted in PostgreSQL: instances on one database share it, windows start over', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const env = { AUTH_RATE_LIMIT: '3', AUTH_RATE_WINDOW: '1' }
  const [a, b] = [await build(t, { databaseUrl, env }), await build(t, { databaseUrl, env })]
  const attempt = (app: TestApp, ip = '198.51.100.20') => app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, payload: { email: 'nobody@example.com', password: 'wrong password here' } })
  const statuses = []
  for (const app of [a, b, a, b, a]) statuses.push((await attempt(app)).statusCode)
  t.same(statuses, [401, 401, 401, 429, 429], 'three answered in all, whichever instance; then refused by both')
  t.equal((await attempt(b, '198.51.100.21')).statusCode, 401, 'another address, its own count')
  const other = await b.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: '198.51.100.20', payload: { refresh_token: 'x'.repeat(43) } })
  t.equal(other.statusCode, 401, 'another route, its own count')
  const { rows } = await a.pg.pool.query('SELECT key, hits FROM rate_limit_hits ORDER BY key')
  t.same(rows, [
    { key: 'POST /auth/login 198.51.100.20', hits: 5 },
    { key: 'POST /auth/login 198.51.100.21', hits: 1 },
    { key: 'POST /auth/refresh 198.51.100.20', hits: 1 }
  ], 'one row per route and address')
  await a.pg.pool.query("UPDATE rate_limit_hits SET reset_at = now() - interval '1 millisecond'")
  t.equal((await attempt(a)).statusCode, 401, 'a new window')
  t.same((await a.pg.pool.query("SELECT hits FROM rate_limit_hits WHERE key = 'POST /auth/login 198.51.100.20'")).rows, [{ hits: 1 }])
})

t.test('while the rate limit cannot be counted, a limited route answers 503, not unlimited', async (t) => {
  const app = await build(t, { env: { DB_STATEMENT_TIMEOUT: '200' } })
  const locker = await app.pg.pool.connect()
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE rate_limit_hits IN ACCESS EXCLUSIVE MODE')
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'a@example.com', password: 'any password at all' } })
  await locker.query('ROLLBACK')
  locker.release()
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
})
