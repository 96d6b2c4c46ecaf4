import t from 'tap'
import { createHmac, createPrivateKey, createPublicKey, sign as edSign } from 'node:crypto'
import { build, createAdmin, loginAs, type TestApp } from '../helper.ts'

async function login (app: TestApp, admin: { email: string, password: string }) {
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const pair = res.json() as { access_token: string, refresh_token: string }
  return { ...pair, headers: { authorization: `Bearer ${pair.access_token}` } }
}

t.test('sessions: list your own, end one, never another admin\'s', async (t) => {
  const app = await build(t)
  const ann = await createAdmin(app)
  const bob = await createAdmin(app)
  const a1 = await login(app, ann)
  const a2 = await login(app, ann)
  const b1 = await loginAs(app, bob)

  const list = await app.inject({ url: '/auth/sessions', headers: a1.headers })
  t.equal(list.statusCode, 200)
  const sessions = list.json() as Array<{ id: string, current: boolean, expiresAt: string, idleExpiresAt: string }>
  t.equal(sessions.length, 2, 'only ann\'s sessions')
  t.same(sessions.map((s) => s.current).sort(), [false, true])
  t.notOk(sessions.some((s) => s.id === b1.sessionId))
  t.same(Object.keys(sessions[0] as object).sort(), ['createdAt', 'current', 'expiresAt', 'id', 'idleExpiresAt', 'ip', 'lastUsedAt', 'userAgent'])
  const other = sessions.find((s) => !s.current) as { id: string }
  const current = sessions.find((s) => s.current) as { id: string }

  // BOLA: bob's session id through ann's token is 404, and bob's session lives on
  const foreign = await app.inject({ method: 'DELETE', url: `/auth/sessions/${b1.sessionId}`, headers: a1.headers })
  t.equal(foreign.statusCode, 404)
  t.match(foreign.headers['content-type'], /problem\+json/)
  t.equal((await app.inject({ url: '/auth/me', headers: b1.headers })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/sessions/00000000-0000-4000-8000-000000000000', headers: a1.headers })).statusCode, 404)
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/sessions/not-a-uuid', headers: a1.headers })).statusCode, 400)

  // end the other session: its access and refresh tokens stop working
  const end = await app.inject({ method: 'DELETE', url: `/auth/sessions/${other.id}`, headers: a1.headers })
  t.equal(end.statusCode, 204)
  const { rows } = await app.pg.pool.query('SELECT id, revoked_reason FROM sessions WHERE revoked_at IS NOT NULL')
  t.same(rows, [{ id: other.id, revoked_reason: 'ended' }])
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/sessions/${other.id}`, headers: a1.headers })).statusCode, 404, 'an ended session is 404')
  const still = (await app.inject({ url: '/auth/sessions', headers: a1.headers })).json() as unknown[]
  t.equal(still.length, 1)
  const twoStatuses = await Promise.all([a1, a2].map(async (s) => (await app.inject({ url: '/auth/me', headers: s.headers })).statusCode))
  t.same(twoStatuses.sort(), [200, 401], 'one of ann\'s tokens is dead, the other works')

  // ending your current session is a logout
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/sessions/${current.id}`, headers: a1.headers })).statusCode, 204)
  t.equal((await app.inject({ url: '/auth/me', headers: a1.headers })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: a1.refresh_token } })).statusCode, 401)
})

t.test('refresh: rotation, idle and absolute lifetimes, concurrent use', async (t) => {
  const app = await build(t, { env: { SESSION_IDLE_TTL: '3600', SESSION_ABSOLUTE_TTL: '7200' } })
  const admin = await createAdmin(app)
  const s = await login(app, admin)
  const { rows: [before] } = await app.pg.pool.query('SELECT extract(epoch FROM idle_expires_at - created_at)::int AS idle, extract(epoch FROM expires_at - created_at)::int AS abs FROM sessions')
  t.same(before, { idle: 3600, abs: 7200 })

  // a refresh pushes the idle expiry out, never past the absolute one
  await app.pg.pool.query("UPDATE sessions SET idle_expires_at = now() + interval '10 seconds', expires_at = now() + interval '30 minutes'")
  const r1 = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: s.refresh_token } })
  t.equal(r1.statusCode, 200)
  const { rows: [touched] } = await app.pg.pool.query('SELECT idle_expires_at = expires_at AS capped, last_used_at > created_at AS used FROM sessions')
  t.same(touched, { capped: true, used: true })

  // idle expiry passed: the session is over
  await app.pg.pool.query("UPDATE sessions SET idle_expires_at = now() - interval '1 second'")
  const pair = r1.json() as { access_token: string, refresh_token: string }
  await app.auth.forgetSessions([(await app.pg.pool.query('SELECT id FROM sessions')).rows[0].id])
  t.equal((await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${pair.access_token}` } })).statusCode, 401, 'idle session: access token refused')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: pair.refresh_token } })).statusCode, 401, 'idle session: refresh refused')

  // absolute expiry passed
  const s2 = await login(app, admin)
  await app.pg.pool.query("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE revoked_at IS NULL AND idle_expires_at > now()")
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: s2.refresh_token } })).statusCode, 401, 'expired session: refresh refused')
  t.equal((await app.pg.pool.query('SELECT count(*)::int AS n FROM sessions WHERE revoked_at IS NOT NULL')).rows[0].n, 0, 'an unused token of a dead session revokes nothing')

  // the same token twice at once: both get a pair of the session (REFRESH_REUSE_INTERVAL), which goes on
  const s3 = await login(app, admin)
  const both = await Promise.all([0, 1].map(async () => await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: s3.refresh_token } })))
  t.same(both.map((r) => r.statusCode), [200, 200])
  for (const r of both) {
    const pair = r.json() as { access_token: string, refresh_token: string }
    t.equal((await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${pair.access_token}` } })).statusCode, 200, 'the session goes on')
  }

  const garbage = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'nope' } })
  t.equal(garbage.statusCode, 401)
  t.match(garbage.json(), { code: 'ROSTER_INVALID_REFRESH_TOKEN' })
})

t.test('legacy GET /auth/refresh takes the refresh token as bearer', async (t) => {
  const app = await build(t)
  const admin = await createAdmin(app)
  const s = await login(app, admin)
  const res = await app.inject({ url: '/auth/refresh', headers: { authorization: `Bearer ${s.refresh_token}` } })
  t.equal(res.statusCode, 200, res.body)
  const pair = res.json()
  t.equal(pair.token_type, 'Bearer')
  t.equal((await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${pair.access_token as string}` } })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: pair.refresh_token } })).statusCode, 200, 'its refresh token works with POST too')

  for (const authorization of [undefined, 'Basic abc', `Bearer ${'x'.repeat(300)}`, `Bearer ${s.access_token}`]) {
    const bad = await app.inject({ url: '/auth/refresh', headers: authorization === undefined ? {} : { authorization } })
    t.equal(bad.statusCode, 401, String(authorization).slice(0, 20))
    t.match(bad.headers['content-type'], /problem\+json/)
  }
  t.equal((await app.inject({ url: '/auth/refresh' })).headers['www-authenticate'], 'Bearer realm="roster"')

  const doc = (await app.inject({ url: '/apidocs/json' })).json()
  t.equal(doc.paths['/auth/refresh'].get.deprecated, true)
  t.notOk(doc.paths['/auth/refresh'].post.deprecated)
  t.equal(doc.paths['/auth/me'].put.deprecated, true)
  t.same(doc.paths['/auth/me'].get.security, [{ bearerAuth: [] }])
  t.notOk(doc.paths['/auth/login'].post.security, 'public routes need no token')
})

t.test('forged, expired and foreign tokens on /auth routes: 401 problem+json', async (t) => {
  const app = await build(t)
  const admin = await createAdmin(app)
  const session = await loginAs(app, admin)
  const key = createPrivateKey(app.auth.keys.privatePem)
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const claims = { sub: admin.id, sid: session.sessionId, jti: 'j', iat: now, exp: now + 600, iss: app.auth.issuer, aud: app.auth.audience }
  const header = { alg: 'EdDSA', typ: 'at+jwt', kid: app.auth.keys.kid }
  const signed = (h: object, c: object, sig?: (input: string) => string) => {
    const input = `${b64(h)}.${b64(c)}`
    return `${input}.${sig === undefined ? edSign(null, Buffer.from(input), key).toString('base64url') : sig(input)}`
  }
  const publicPem = createPublicKey(key).export({ format: 'pem', type: 'spki' }).toString()
  const [h, p] = session.accessToken.split('.') as [string, string]
  const tampered = `${h}.${b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: '00000000-0000-4000-8000-000000000000' })}.${session.accessToken.split('.')[2] as string}`
  const cases: Record<string, string> = {
    expired: signed(header, { ...claims, iat: now - 1000, exp: now - 10 }),
    tampered,
    'alg none': signed({ ...header, alg: 'none' }, claims, () => ''),
    'HS256 with the public key': signed({ ...header, alg: 'HS256' }, claims, (i) => createHmac('sha256', publicPem).update(i).digest('base64url')),
    'wrong typ': signed({ ...header, typ: 'JWT' }, claims),
    'wrong aud': signed(header, { ...claims, aud: 'elsewhere' }),
    'wrong iss': signed(header, { ...claims, iss: 'https://evil.example' }),
    'a refresh token': session.refreshToken
  }
  t.equal((await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${signed(header, claims)}` } })).statusCode, 200, 'control')
  for (const [name, token] of Object.entries(cases)) {
    const res = await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${token}` } })
    t.equal(res.statusCode, 401, name)
    t.match(res.headers['content-type'], /application\/problem\+json/, name)
    t.equal(res.json().code, 'ROSTER_UNAUTHORIZED', name)
  }
})

t.test('for an admin that no longer exists: no session, no row', async (t) => {
  const app = await build(t)
  const gone = '00000000-0000-4000-8000-000000000000'
  const started = await app.sessions.repository.start({ adminId: gone, ttl: { idle: 60, absolute: 120 }, throttle: { email: 'x@example.com', client: '127.0.0.1', policy: { threshold: 10, accountThreshold: 50, window: 900, duration: 900 } } })
  t.equal(started, null)
  t.equal((await app.pg.pool.query('SELECT count(*)::int AS n FROM sessions')).rows[0].n, 0)
  t.equal(await app.admins.repository.get(gone), null)
  t.equal(await app.admins.repository.update(app.db, gone, { name: 'nobody' }), null)
})

t.test('REFRESH_REUSE_INTERVAL: a refresh token used again soon gets a pair of the same session; later, the session ends', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000' } })
  const admin = await createAdmin(app)
  const s = await login(app, admin)
  const refresh = async (token: string) => await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })
  const me = async (accessToken: string) => (await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${accessToken}` } })).statusCode

  // A client whose answer was lost retries with the same token.
  const first = (await refresh(s.refresh_token)).json() as { access_token: string, refresh_token: string }
  const retry = await refresh(s.refresh_token)
  t.equal(retry.statusCode, 200, 'the retry gets a pair')
  const second = retry.json() as { access_token: string, refresh_token: string }
  t.not(second.refresh_token, first.refresh_token, 'with a refresh token of its own')
  t.equal(await me(second.access_token), 200)
  t.equal(await me(first.access_token), 200, 'the session is not revoked')
  t.equal((await refresh(second.refresh_token)).statusCode, 200, 'the retry\'s refresh token works afterwards')
  t.equal((await refresh(first.refresh_token)).statusCode, 200, 'and so does the first answer\'s')
  const { rows: [session] } = await app.pg.pool.query('SELECT revoked_at, (SELECT count(*)::int FROM refresh_tokens) AS tokens FROM sessions')
  t.same(session, { revoked_at: null, tokens: 5 })

  // Ten at once with one token: all answered, every answer usable, the session live.
  const s2 = await login(app, admin)
  const ten = await Promise.all(Array.from({ length: 10 }, async () => await refresh(s2.refresh_token)))
  t.same(ten.map((r) => r.statusCode), Array(10).fill(200))
  const pairs = ten.map((r) => r.json() as { access_token: string, refresh_token: string })
  t.equal(new Set(pairs.map((p) => p.refresh_token)).size, 10, 'ten refresh tokens')
  for (const p of pairs) t.equal(await me(p.access_token), 200)
  t.same((await Promise.all(pairs.map(async (p) => (await refresh(p.refresh_token)).statusCode))), Array(10).fill(200), 'each works afterwards')

  // After the interval, a used token is a stolen copy: the session ends.
  await app.pg.pool.query("UPDATE refresh_tokens SET used_at = used_at - interval '11 seconds' WHERE used_at IS NOT NULL")
  const late = await refresh(s2.refresh_token)
  t.equal(late.statusCode, 401)
  t.equal(late.json().code, 'ROSTER_INVALID_REFRESH_TOKEN')
  t.equal(await me(pairs[0]?.access_token as string), 401, 'the session has ended')

  // 0: any second use ends the session, as before the interval existed.
  const strict = await build(t, { env: { REFRESH_REUSE_INTERVAL: '0' } })
  const a = await createAdmin(strict)
  const s3 = await login(strict, a)
  t.equal((await strict.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: s3.refresh_token } })).statusCode, 200)
  t.equal((await strict.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: s3.refresh_token } })).statusCode, 401)
  t.equal((await strict.pg.pool.query('SELECT revoked_reason FROM sessions')).rows[0].revoked_reason, 'refresh_token_reuse')
})
