import t from 'tap'
import { parseOptions } from '@node-rs/argon2'
import { build, createAdmin, createTestDatabase, loginAs, type TestApp } from '../helper.ts'
import { clientKey } from '../../src/infra/client-key.ts'

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
  const { rows } = await app.pg.pool.query('SELECT email, client, failures FROM login_throttle ORDER BY email, client')
  t.same(rows, [
    { email: admin.email, client: '*', failures: 1 },
    { email: 'nobody@example.com', client: '*', failures: 1 },
    { email: 'nobody@example.com', client: '127.0.0.1', failures: 1 }
  ], 'a login forgets its address\'s failures and gives its own attempt back; the account keeps the failure; the unknown email keeps both counts')
})

/** Makes every lock final at once: the attempts counted were checked long ago (instead of waiting SETTLE_SECONDS). */
const settled = async (app: TestApp): Promise<void> => {
  await app.pg.pool.query("UPDATE login_throttle SET last_attempt_at = now() - interval '1 minute', other_attempt_at = now() - interval '1 minute'")
}

t.test('lockout: per email and client address, then account-wide; 429 with Retry-After, known or not', async (t) => {
  // The /auth rate limit is the fleet's (counted in PostgreSQL): out of the way of the 30-odd logins from one address here.
  const app = await build(t, { env: { LOCKOUT_THRESHOLD: '3', LOCKOUT_ACCOUNT_THRESHOLD: '7', LOCKOUT_WINDOW: '900', LOCKOUT_DURATION: '900', AUTH_RATE_LIMIT: '1000' } })
  const admin = await createAdmin(app)
  const from = (ip: string, email: string, password: string) => ({ ...login(email, password), remoteAddress: ip })
  for (const email of [admin.email, 'ghost@example.com']) {
    for (let i = 0; i < 3; i++) t.equal((await app.inject(from('192.0.2.1', email, 'guess number ' + String(i)))).statusCode, 401, `failure ${i + 1}`)
    const locked = await app.inject(from('192.0.2.1', email, email === admin.email ? admin.password : 'any password at all'))
    t.equal(locked.statusCode, 429, 'locked from that address, even with the right password (this instance knows no attempt is being checked)')
    t.match(locked.headers['content-type'], /problem\+json/)
    t.match(locked.json(), { code: 'ROSTER_LOGIN_LOCKED', status: 429, detail: /try again in \d+ seconds/ })
    const retry = Number(locked.headers['retry-after'])
    t.ok(retry > 890 && retry <= 900, `Retry-After ${retry}`)
    for (let i = 0; i < 10; i++) await app.inject(from('192.0.2.1', email, 'more guesses while locked'))
  }
  const counts = async (email: string) => Object.fromEntries((await app.pg.pool.query('SELECT client, failures FROM login_throttle WHERE email = $1', [email])).rows.map((r) => [r.client, r.failures]))
  t.same(await counts(admin.email), { '192.0.2.1': 3, '*': 3 }, 'attempts refused by a locked address count nowhere')

  // The owner, elsewhere, is not locked out by the attacker's address.
  t.equal((await app.inject(from('198.51.100.1', admin.email, admin.password))).statusCode, 200, 'the owner logs in from another address')
  t.same(await counts(admin.email), { '192.0.2.1': 3, '*': 3 }, 'a login gives its own attempt back, and leaves the attacker\'s count')

  // Guesses spread over addresses meet the account-wide ceiling (3 counted so far, 7 at most).
  for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4']) {
    t.equal((await app.inject(from(ip, admin.email, 'a guess from elsewhere'))).statusCode, 401, ip)
  }
  await settled(app)
  const ceiling = await app.inject(from('198.51.100.1', admin.email, admin.password))
  t.equal(ceiling.statusCode, 429, 'account-wide ceiling reached: locked for everyone')
  t.ok(Number(ceiling.headers['retry-after']) > 890)
  t.same(await counts(admin.email), { '192.0.2.1': 3, '203.0.113.1': 1, '203.0.113.2': 1, '203.0.113.3': 1, '203.0.113.4': 1, '*': 7 }, 'nothing counted while the account is locked')
  const { rows: expiry } = await app.pg.pool.query("SELECT client, expires_at = locked_until AS lock, expires_at - window_started_at = interval '900 seconds' AS window FROM login_throttle WHERE email = $1 AND client IN ('*', '203.0.113.1') ORDER BY client", [admin.email])
  t.same(expiry, [{ client: '*', lock: true, window: false }, { client: '203.0.113.1', lock: null, window: true }], 'every row says when it stops meaning anything (its lock or its window is over): pruning deletes by expires_at')

  // a second instance shares the counters (they are in Postgres)
  const other = await build(t, { databaseUrl: app.databaseUrl, env: { LOCKOUT_THRESHOLD: '3', LOCKOUT_ACCOUNT_THRESHOLD: '7', AUTH_RATE_LIMIT: '1000' } })
  t.equal((await other.inject(from('192.0.2.1', admin.email, admin.password))).statusCode, 429)

  // the locks end: a correct password logs in and forgets its address's count
  await app.pg.pool.query("UPDATE login_throttle SET locked_until = now() - interval '1 second' WHERE locked_until IS NOT NULL")
  t.equal((await app.inject(from('192.0.2.1', admin.email, admin.password))).statusCode, 200)
  t.same(await counts(admin.email), { '203.0.113.1': 1, '203.0.113.2': 1, '203.0.113.3': 1, '203.0.113.4': 1, '*': 0 }, 'after a lock, counting starts over')

  // after a lock, counting starts over
  t.equal((await app.inject(from('192.0.2.1', 'ghost@example.com', 'one more guess'))).statusCode, 401)
  const { rows: [ghost] } = await app.pg.pool.query("SELECT failures, locked_until FROM login_throttle WHERE email = 'ghost@example.com' AND client = '192.0.2.1'")
  t.same(ghost, { failures: 1, locked_until: null })

  // failures older than the window are forgotten
  await app.inject(from('192.0.2.9', admin.email, 'guess one'))
  await app.inject(from('192.0.2.9', admin.email, 'guess two'))
  await app.pg.pool.query("UPDATE login_throttle SET window_started_at = now() - interval '901 seconds' WHERE email = $1", [admin.email])
  t.equal((await app.inject(from('192.0.2.9', admin.email, 'guess three'))).statusCode, 401)
  t.equal((await app.inject(from('192.0.2.9', admin.email, admin.password))).statusCode, 200, 'not locked: the window had started over')
})

t.test('IPv6 clients are counted by their /64', async (t) => {
  t.equal(clientKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64')
  t.equal(clientKey('2001:0DB8:0001:0002::9'), '2001:db8:1:2::/64')
  t.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(clientKey('::1'), '0:0:0:0::/64')
  t.equal(clientKey('2001:db8:1::'), '2001:db8:1:0::/64')
  t.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64')
  t.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7', 'IPv4-mapped is IPv4')
  t.equal(clientKey('192.0.2.7'), '192.0.2.7')
  const app = await build(t, { env: { LOCKOUT_THRESHOLD: '2' } })
  const admin = await createAdmin(app)
  for (const ip of ['2001:db8:1:2::a', '2001:db8:1:2::b']) await app.inject({ ...login(admin.email, 'a wrong guess'), remoteAddress: ip })
  t.equal((await app.inject({ ...login(admin.email, admin.password), remoteAddress: '2001:db8:1:2::c' })).statusCode, 429, 'one /64, one budget')
  t.equal((await app.inject({ ...login(admin.email, admin.password), remoteAddress: '2001:db8:1:3::c' })).statusCode, 200, 'the next /64 has its own')
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'x'.repeat(43) }, remoteAddress: '2001:db8:1:3::d' })
  t.same((await app.pg.pool.query('SELECT key, hits FROM rate_limit_hits ORDER BY key')).rows, [
    { key: 'POST /auth/login 2001:db8:1:2::/64', hits: 3 },
    { key: 'POST /auth/login 2001:db8:1:3::/64', hits: 1 },
    { key: 'POST /auth/refresh 2001:db8:1:3::/64', hits: 1 }
  ], 'the /auth rate limit counts them by their /64 too, whichever statement counts')
})

t.test('concurrent correct logins are never refused; concurrent wrong guesses never get more than the threshold checked', async (t) => {
  const app = await build(t, { env: { LOCKOUT_THRESHOLD: '10', LOCKOUT_ACCOUNT_THRESHOLD: '15', AUTH_RATE_LIMIT: '100000' } })
  const admin = await createAdmin(app)
  const burst = async (n: number, password: string, ip: (i: number) => string) =>
    (await Promise.all(Array.from({ length: n }, async (_, i) => await app.inject({ ...login(admin.email, password), remoteAddress: ip(i) })))).map((r) => r.statusCode)
  const tally = (statuses: number[]) => statuses.reduce<Record<number, number>>((acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }), {})

  t.same(tally(await burst(24, admin.password, () => '192.0.2.1')), { 200: 24 }, '24 at once from one address: all logged in')
  t.same(tally(await burst(24, admin.password, (i) => `198.51.100.${i}`)), { 200: 24 }, '24 at once from 24 addresses, over the account-wide ceiling of 15: all logged in')
  t.same((await app.pg.pool.query('SELECT client, failures, locked_until FROM login_throttle')).rows, [{ client: '*', failures: 0, locked_until: null }], 'and every attempt was given back')
  const hits = async (ip: string): Promise<unknown> => (await app.pg.pool.query('SELECT hits FROM rate_limit_hits WHERE key = $1', [`POST /auth/login ${ip}`])).rows[0]?.hits
  t.equal(await hits('192.0.2.1'), 24, 'each request counted once against the rate limit, however often its statement ran while a lock was waited out')

  const wrong = tally(await burst(30, 'a wrong guess in parallel', () => '192.0.2.2'))
  t.same(wrong, { 401: 10, 429: 20 }, '30 wrong guesses at once from one address: 10 checked, 20 refused')
  const spread = tally(await burst(30, 'a wrong guess from everywhere', (i) => `203.0.113.${i}`))
  t.same(spread, { 401: 5, 429: 25 }, 'and from 30 addresses: the account-wide ceiling (15) holds')
  t.equal((await app.pg.pool.query("SELECT failures FROM login_throttle WHERE client = '*'")).rows[0].failures, 15)
  t.equal(await hits('192.0.2.2'), 30, 'the refused ones counted once too')
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

t.test('POST /auth/login counts its rate limit in its statement; a body that does not parse or validate is counted too, and over the limit answered 429', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '3', AUTH_RATE_WINDOW: '60' } })
  const admin = await createAdmin(app)
  const from = { method: 'POST' as const, url: '/auth/login', remoteAddress: '192.0.2.8' }
  const limits = (res: { headers: Record<string, unknown> }) => [res.headers['x-ratelimit-limit'], res.headers['x-ratelimit-remaining']]
  const unparsable = await app.inject({ ...from, headers: { 'content-type': 'application/json' }, payload: '{"email":' })
  t.equal(unparsable.statusCode, 400)
  t.same(limits(unparsable), ['3', '2'], 'a body that does not parse: counted, with the limit\'s headers')
  const invalid = await app.inject({ ...from, payload: { email: admin.email } })
  t.equal(invalid.statusCode, 400)
  t.same(limits(invalid), ['3', '1'], 'a body that does not validate: counted')
  const ok = await app.inject({ ...from, payload: { email: admin.email, password: admin.password } })
  t.equal(ok.statusCode, 200)
  t.same(limits(ok), ['3', '0'], 'a login: counted by its statement, the same headers')
  t.ok(Number(ok.headers['x-ratelimit-reset']) > 0, 'x-ratelimit-reset')
  for (const payload of ['{"email":', JSON.stringify({ email: admin.email, password: admin.password })]) {
    const over = await app.inject({ ...from, headers: { 'content-type': 'application/json' }, payload })
    t.equal(over.statusCode, 429, 'over the limit, whatever the body')
    t.match(over.json(), { code: 'ROSTER_RATE_LIMITED', status: 429, detail: /retry in/ })
    t.ok(Number(over.headers['retry-after']) > 0, 'Retry-After')
    t.same(limits(over), ['3', '0'])
  }
  t.same((await app.pg.pool.query('SELECT email, client, failures FROM login_throttle')).rows, [{ email: admin.email, client: '*', failures: 0 }], 'the login over the limit counted no attempt')
  t.same((await app.pg.pool.query('SELECT key, hits FROM rate_limit_hits')).rows, [{ key: 'POST /auth/login 192.0.2.8', hits: 5 }], 'each request counted once')
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
