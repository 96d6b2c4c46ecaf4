import t from 'tap'
import { build, createAdmin, loginAs } from '../helper.ts'
import { idempotencyKey, requestFingerprint } from '../../src/infra/idempotency.ts'
import { IDEMPOTENCY_KEY_PATTERN } from '../../schemas/users.ts'
import { count, problem, usersFixture } from './helpers.ts'

t.test('the same key and body replay the first response; another body is a 422', async (t) => {
  const { app, auth } = await usersFixture(t)
  const headers = auth({ 'idempotency-key': 'create-ann-1' })
  const first = await app.inject({ method: 'POST', url: '/users', headers, payload: { email: 'ann@example.com', name: 'Ann' } })
  t.equal(first.statusCode, 201)
  t.equal(first.headers['idempotent-replayed'], undefined)

  const again = await app.inject({ method: 'POST', url: '/users', headers, payload: { email: 'ann@example.com', name: 'Ann' } })
  t.equal(again.statusCode, 201, 'same status')
  t.equal(again.body, first.body, 'same body, byte for byte')
  t.equal(again.headers.location, first.headers.location)
  t.equal(again.headers.etag, first.headers.etag)
  t.equal(again.headers['content-type'], first.headers['content-type'])
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.not(again.headers['x-request-id'], first.headers['x-request-id'], 'the request id is this request\'s own')

  // Replayed even after the user changed: the answer is the first response, not the current state.
  await app.inject({ method: 'PATCH', url: first.headers.location as string, headers: auth(), payload: { name: 'Changed' } })
  t.equal((await app.inject({ method: 'POST', url: '/users', headers, payload: { email: 'ann@example.com', name: 'Ann' } })).body, first.body)

  const other = await app.inject({ method: 'POST', url: '/users', headers, payload: { email: 'ann@example.com', name: 'Ann B.' } })
  t.equal(other.statusCode, 422)
  t.match(problem(other), { code: 'ROSTER_IDEMPOTENCY_KEY_REUSED' })
  const elsewhere = await app.inject({ method: 'POST', url: '/user', headers, payload: { email: 'ann@example.com', name: 'Ann' } })
  t.equal(elsewhere.statusCode, 422, 'the same key on another path is another request')
  t.equal(await count(app, 'users'), 1)
  t.equal(await count(app, 'audit_events', "action = 'user.create'"), 1)
  t.equal(await count(app, 'idempotency_keys'), 1)

  const quoted = await app.inject({ method: 'POST', url: '/users', headers: auth({ 'idempotency-key': '"create-ann-1"' }), payload: { email: 'ann@example.com', name: 'Ann' } })
  t.equal(quoted.body, first.body, 'the quoted form is the same key')

  const { rows: [row] } = await app.pg.pool.query('SELECT * FROM idempotency_keys')
  t.match(row, { key: 'create-ann-1', status_code: 201, response_body: first.body })
  t.notMatch(JSON.stringify(row), /Bearer|authorization/i, 'no credentials stored')
  t.ok(row.expires_at.getTime() - row.created_at.getTime() === 24 * 3600 * 1000, 'kept 24 h')
})

t.test('keys are scoped to the admin', async (t) => {
  const { app, auth } = await usersFixture(t)
  const other = await loginAs(app, await createAdmin(app))
  const a = await app.inject({ method: 'POST', url: '/users', headers: auth({ 'idempotency-key': 'k1' }), payload: { email: 'ann@example.com' } })
  const b = await app.inject({ method: 'POST', url: '/users', headers: { ...other.headers, 'idempotency-key': 'k1' }, payload: { email: 'bob@example.com' } })
  t.equal(a.statusCode, 201)
  t.equal(b.statusCode, 201, 'another admin\'s key is another key')
  t.not(a.json().id, b.json().id)
})

t.test('concurrent requests with one key create one user, and all get its response', async (t) => {
  const { app, auth } = await usersFixture(t)
  const headers = auth({ 'idempotency-key': 'race-1' })
  const results = await Promise.all(Array.from({ length: 6 }, async () =>
    await app.inject({ method: 'POST', url: '/users', headers, payload: { email: 'race@example.com' } })))
  t.same(results.map((r) => r.statusCode), [201, 201, 201, 201, 201, 201])
  t.equal(new Set(results.map((r) => r.body)).size, 1, 'one body for all')
  t.equal(results.filter((r) => r.headers['idempotent-replayed'] === 'true').length, 5, 'one created, five replayed')
  t.equal(await count(app, 'users'), 1)
  t.equal(await count(app, 'audit_events'), 1)

  const mixed = await Promise.all(['x@example.com', 'y@example.com', 'z@example.com'].map(async (email) =>
    await app.inject({ method: 'POST', url: '/users', headers: auth({ 'idempotency-key': 'race-2' }), payload: { email } })))
  t.same(mixed.map((r) => r.statusCode).sort(), [201, 422, 422], 'one key, three bodies: one wins, the others are told')
  t.equal(await count(app, 'users'), 2)
})

t.test('a failed first request stores nothing; an expired key starts afresh', async (t) => {
  const { app, auth, createUser } = await usersFixture(t)
  const taken = await createUser({ email: 'ann@example.com' })
  const headers = auth({ 'idempotency-key': 'retry-me' })
  const conflict = await app.inject({ method: 'POST', url: '/users', headers, payload: { email: 'ann@example.com' } })
  t.equal(conflict.statusCode, 409)
  t.equal(await count(app, 'idempotency_keys'), 0, 'the key was rolled back with the failed create')
  await app.inject({ method: 'DELETE', url: `/users/${taken.id}`, headers: auth() })
  const retried = await app.inject({ method: 'POST', url: '/users', headers, payload: { email: 'ann@example.com' } })
  t.equal(retried.statusCode, 201, 'a retry after the cause is gone succeeds')

  await app.pg.pool.query("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
  await app.inject({ method: 'DELETE', url: retried.headers.location as string, headers: auth() })
  const fresh = await app.inject({ method: 'POST', url: '/users', headers, payload: { email: 'ann@example.com' } })
  t.equal(fresh.statusCode, 201)
  t.equal(fresh.headers['idempotent-replayed'], undefined, 'expired: not a replay')
  t.not(fresh.json().id, retried.json().id)
  const { rows: [row] } = await app.pg.pool.query<{ live: boolean }>('SELECT expires_at > now() AS live FROM idempotency_keys')
  t.equal(row?.live, true, 'the key lives again for 24 h')
})

t.test('Idempotency-Key values are validated', async (t) => {
  const { app, auth } = await usersFixture(t)
  for (const key of ['', ' ', 'has space', 'a,b', 'ü', 'x'.repeat(256), '"unterminated', '""']) {
    const res = await app.inject({ method: 'POST', url: '/users', headers: auth({ 'idempotency-key': key }), payload: { email: 'ann@example.com' } })
    t.equal(res.statusCode, 400, JSON.stringify(key))
    t.equal(problem(res).errors?.[0]?.path, '/headers/idempotency-key')
  }
  t.equal(await count(app, 'users'), 0)
  for (const key of ['x', 'x'.repeat(255), '01J9ZQ7T3V8Y2B6K4M0N5P7R9S', 'a.b_c:d~e+f/g=h-i', `"${'q'.repeat(255)}"`]) {
    t.match(key, new RegExp(IDEMPOTENCY_KEY_PATTERN), key.slice(0, 20))
  }
  t.equal(idempotencyKey('"abc"'), 'abc')
  t.equal(idempotencyKey('abc'), 'abc')
  t.not(requestFingerprint('k', 'POST', '/users', { a: 1 }), requestFingerprint('k', 'POST', '/users', { a: 2 }))
  t.not(requestFingerprint('k', 'POST', '/users', { a: 1 }), requestFingerprint('other', 'POST', '/users', { a: 1 }), 'keyed by SECRET_KEY')
})

t.test('expired keys are deleted by the pruning job', async (t) => {
  const app = await build(t)
  const admin = await createAdmin(app)
  await app.pg.pool.query(`INSERT INTO idempotency_keys (admin_id, key, fingerprint, expires_at) VALUES
    ($1, 'old', 'f', now() - interval '1 hour'), ($1, 'live', 'f', now() + interval '1 hour')`, [admin.id])
  t.match(await app.retention.run(), { idempotency_keys: 1 })
  t.same((await app.pg.pool.query('SELECT key FROM idempotency_keys')).rows, [{ key: 'live' }])
})
