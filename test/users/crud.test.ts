import t from 'tap'
import { count, problem, usersFixture } from './helpers.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

t.test('create, read, update, delete', async (t) => {
  const { app, admin, auth } = await usersFixture(t)

  const created = await app.inject({ method: 'POST', url: '/users', headers: auth(), payload: { email: 'Ann@Example.com', name: 'Ann' } })
  t.equal(created.statusCode, 201)
  const user = created.json()
  t.match(user.id, UUID)
  t.same(Object.keys(user).sort(), ['active', 'createdAt', 'createdBy', 'email', 'id', 'name', 'updatedAt'], 'exactly the documented fields')
  t.match(user, { email: 'Ann@Example.com', name: 'Ann', active: true, createdBy: admin.id })
  t.equal(user.createdAt, user.updatedAt)
  t.equal(user.createdAt, new Date(user.createdAt).toISOString(), 'timestamps are ISO 8601 in UTC with milliseconds')
  const { rows: [stored] } = await app.pg.pool.query<{ ms: string }>("SELECT (extract(epoch FROM date_trunc('milliseconds', created_at)) * 1000)::bigint::text AS ms FROM users WHERE id = $1", [user.id])
  t.equal(String(Date.parse(user.createdAt)), stored?.ms, 'the stored instant, to the millisecond')
  t.equal(created.headers.location, `/users/${user.id}`)
  t.equal(created.headers.etag, `"${user.id}.1"`)
  t.equal(created.headers['cache-control'], 'no-store')

  const listed = await app.inject({ url: '/users', headers: auth() })
  t.same(listed.json<Array<{ id: string }>>().find((u) => u.id === user.id), user, 'the list shows the user as its creation did (its instants made in Node, not by to_char: the same text)')
  const read = await app.inject({ url: `/users/${user.id}`, headers: auth() })
  t.equal(read.statusCode, 200)
  t.same(read.json(), { ...user, groups: [] }, 'GET /users/{id} adds the user\'s groups')
  t.equal(read.headers.etag, created.headers.etag)
  const upper = await app.inject({ url: `/users/${user.id.toUpperCase()}`, headers: auth() })
  t.same(upper.json(), { ...user, groups: [] }, 'ids are case-insensitive')

  const patched = await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth(), payload: { name: 'Ann B.', active: false } })
  t.equal(patched.statusCode, 200)
  t.match(patched.json(), { id: user.id, email: 'Ann@Example.com', name: 'Ann B.', active: false, createdAt: user.createdAt, createdBy: admin.id })
  t.ok(patched.json().updatedAt > user.updatedAt, 'updatedAt moves')
  t.equal(patched.headers.etag, `"${user.id}.2"`, 'the ETag changes on every update')

  const cleared = await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth(), payload: { name: null, email: 'ann@example.org' } })
  t.match(cleared.json(), { name: null, email: 'ann@example.org', active: false })

  const deleted = await app.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: auth() })
  t.equal(deleted.statusCode, 204)
  t.equal(deleted.body, '')
  t.equal((await app.inject({ url: `/users/${user.id}`, headers: auth() })).statusCode, 404)
  const again = await app.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: auth() })
  t.equal(again.statusCode, 404)
  t.match(problem(again), { code: 'ROSTER_NOT_FOUND', detail: `No user with id ${user.id}` })
})

t.test('defaults and optional fields', async (t) => {
  const { createUser } = await usersFixture(t)
  t.match(await createUser({ email: 'bob@example.com' }), { name: null, active: true })
  t.match(await createUser({ email: 'carl@example.com', name: null, active: false }), { name: null, active: false })
  t.match(await createUser({ email: 'dora@example.com', name: 'd'.repeat(100) }), { name: 'd'.repeat(100) })
  t.match(await createUser({ email: `${'e'.repeat(64)}@${'x'.repeat(63)}.${'y'.repeat(63)}.${'z'.repeat(57)}.com` }), { active: true }, 'a 254-character email')
})

t.test('emails are unique case-insensitively, on create and on update', async (t) => {
  const { app, auth, createUser } = await usersFixture(t)
  const ann = await createUser({ email: 'ann@example.com' })
  const bob = await createUser({ email: 'bob@example.com' })

  const dup = await app.inject({ method: 'POST', url: '/users', headers: auth(), payload: { email: 'ANN@example.COM' } })
  t.equal(dup.statusCode, 409)
  t.match(problem(dup), { code: 'ROSTER_USER_EMAIL_TAKEN', detail: /^email: / })

  const steal = await app.inject({ method: 'PATCH', url: `/users/${bob.id}`, headers: auth(), payload: { email: 'Ann@Example.com' } })
  t.equal(steal.statusCode, 409)
  t.match(problem(steal), { code: 'ROSTER_USER_EMAIL_TAKEN' })
  t.equal((await app.inject({ url: `/users/${bob.id}`, headers: auth() })).json().email, 'bob@example.com', 'unchanged')

  const own = await app.inject({ method: 'PATCH', url: `/users/${ann.id}`, headers: auth(), payload: { email: 'ann@example.com', name: 'Ann' } })
  t.equal(own.statusCode, 200, 'its own email is no conflict')
  const recased = await app.inject({ method: 'PATCH', url: `/users/${ann.id}`, headers: auth(), payload: { email: 'ANN@example.com' } })
  t.equal(recased.statusCode, 200, 'nor a change of case')
  t.equal(recased.json().email, 'ANN@example.com')
  t.equal(await count(app, 'users'), 2)
  t.equal(await count(app, 'audit_events', "action = 'user.update'"), 2, 'refused updates left no audit row')
})

t.test('bodies are validated; nothing can be mass-assigned', async (t) => {
  const { app, auth, createUser } = await usersFixture(t)
  const user = await createUser({ email: 'ann@example.com' })
  const bad: Array<[string, unknown, string]> = [
    ['no email', { name: 'x' }, '/body/email'],
    ['not an email', { email: 'nope' }, '/body/email'],
    ['email too long', { email: `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.com` }, '/body/email'],
    ['name too long', { email: 'x@example.com', name: 'n'.repeat(101) }, '/body/name'],
    ['name with NUL', { email: 'x@example.com', name: 'a\u0000b' }, '/body/name'],
    ['name with a newline', { email: 'x@example.com', name: 'a\nb' }, '/body/name'],
    ['active not a boolean', { email: 'x@example.com', active: 'maybe' }, '/body/active'],
    ['id', { email: 'x@example.com', id: user.id }, '/body/id'],
    ['createdAt', { email: 'x@example.com', createdAt: '2020-01-01T00:00:00Z' }, '/body/createdAt'],
    ['createdBy', { email: 'x@example.com', createdBy: user.id }, '/body/createdBy'],
    ['version', { email: 'x@example.com', version: 7 }, '/body/version']
  ]
  for (const [what, payload, path] of bad) {
    const res = await app.inject({ method: 'POST', url: '/users', headers: auth(), payload: payload as object })
    t.equal(res.statusCode, 400, what)
    const body = problem(res)
    t.equal(body.code, 'ROSTER_VALIDATION_FAILED')
    t.ok(body.errors?.some((e) => e.path === path), `${what}: ${path} named`)
  }
  for (const [what, payload] of [['empty patch', {}], ['id', { id: user.id }], ['updatedAt', { updatedAt: '2020-01-01T00:00:00Z' }], ['email null', { email: null }]] as const) {
    const res = await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth(), payload })
    t.equal(res.statusCode, 400, `PATCH: ${what}`)
  }
  t.equal(await count(app, 'users'), 1)
  t.match((await app.inject({ url: `/users/${user.id}`, headers: auth() })).json(), { email: 'ann@example.com', name: null }, 'unchanged')
})

t.test('ids are validated; unknown ids are 404', async (t) => {
  const { app, auth } = await usersFixture(t)
  for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
    const payload = method === 'PATCH' ? { name: 'x' } : undefined
    const bad = await app.inject({ method, url: '/users/not-a-uuid', headers: auth(), ...(payload === undefined ? {} : { payload }) })
    t.equal(bad.statusCode, 400, `${method} malformed id`)
    t.equal(problem(bad).errors?.[0]?.path, '/params/id')
    const unknown = await app.inject({ method, url: '/users/00000000-0000-4000-8000-000000000000', headers: auth(), ...(payload === undefined ? {} : { payload }) })
    t.equal(unknown.statusCode, 404, `${method} unknown id`)
    t.equal(problem(unknown).code, 'ROSTER_NOT_FOUND')
    const long = await app.inject({ method, url: `/users/${'x'.repeat(300)}`, headers: auth() })
    t.equal(long.statusCode, 414, `${method} overlong id`)
    t.equal(problem(long).code, 'ROSTER_URI_TOO_LONG')
    t.ok(long.headers['x-request-id'])
  }
  const badUrl = await app.inject({ url: '/users/%E0%A4%A', headers: auth() })
  t.equal(badUrl.statusCode, 400)
  t.equal(problem(badUrl).code, 'ROSTER_BAD_URL')
})

t.test('every users route needs a valid token', async (t) => {
  const { app, createUser } = await usersFixture(t)
  const user = await createUser({ email: 'ann@example.com' })
  const routes: Array<[string, string, object?]> = [
    ['GET', '/users'], ['POST', '/users', { email: 'b@example.com' }], ['GET', `/users/${user.id}`],
    ['PATCH', `/users/${user.id}`, { name: 'x' }], ['DELETE', `/users/${user.id}`],
    ['GET', `/user?id=${user.id}`], ['POST', '/user', { email: 'b@example.com' }], ['PUT', `/user?id=${user.id}`, { name: 'x' }], ['DELETE', `/user?id=${user.id}`],
    ['GET', '/audit-events'], ['GET', '/auth/admins']
  ]
  for (const [method, url, payload] of routes) {
    const res = await app.inject({ method: method as 'GET', url, ...(payload === undefined ? {} : { payload }) })
    t.equal(res.statusCode, 401, `${method} ${url}`)
    t.equal(problem(res).code, 'ROSTER_UNAUTHORIZED')
    const forged = await app.inject({ method: method as 'GET', url, headers: { authorization: 'Bearer a.b.c' }, ...(payload === undefined ? {} : { payload }) })
    t.equal(forged.statusCode, 401)
  }
  t.equal((await app.inject({ url: `/users/${user.id}`, headers: { authorization: 'Bearer x.y.z' } })).statusCode, 401)
})

t.test('createdBy is the creating admin, and null once that admin is deleted', async (t) => {
  // The longest session cache allowed, so that the deleted admin's token is surely still cached below.
  const { app, admin, auth, createUser } = await usersFixture(t, { SESSION_CACHE_TTL: '5000' })
  const user = await createUser({ email: 'ann@example.com' })
  t.equal(user.createdBy, admin.id)
  const { createAdmin, loginAs } = await import('../helper.ts')
  const other = await createAdmin(app)
  const otherSession = await loginAs(app, other)
  const theirs = await app.inject({ method: 'POST', url: '/users', headers: otherSession.headers, payload: { email: 'bob@example.com' } })
  t.equal(theirs.json().createdBy, other.id)

  await app.pg.pool.query('DELETE FROM admins WHERE id = $1', [other.id])
  const orphan = await app.inject({ url: `/users/${theirs.json().id as string}`, headers: auth() })
  t.equal(orphan.statusCode, 200, 'the user stays')
  t.equal(orphan.json().createdBy, null)
  t.equal(orphan.headers.etag, theirs.headers.etag, 'the ETag names the API version, not the foreign key')

  // The deleted admin's token is still cached as live for a moment: a create then cannot name it.
  const late = await app.inject({ method: 'POST', url: '/users', headers: otherSession.headers, payload: { email: 'carl@example.com' } })
  t.equal(late.statusCode, 401)
  t.match(problem(late).detail, /no longer exists/)
  t.equal(await count(app, 'users', "email = 'carl@example.com'"), 0)
})
