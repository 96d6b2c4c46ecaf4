import t from 'tap'
import { count, problem, usersFixture } from './helpers.ts'

interface Event { id: string, actorId: string | null, action: string, targetType: string, targetId: string, requestId: string | null, changes: Record<string, unknown>, createdAt: string }

t.test('every create, update and delete writes an audit event', async (t) => {
  const { app, admin, auth } = await usersFixture(t)
  const created = await app.inject({ method: 'POST', url: '/users', headers: auth({ 'x-request-id': 'req-create' }), payload: { email: 'ann@example.com', name: 'Ann' } })
  const id = created.json().id as string
  await app.inject({ method: 'PATCH', url: `/users/${id}`, headers: auth({ 'x-request-id': 'req-update' }), payload: { name: null, active: false } })
  await app.inject({ method: 'PUT', url: `/user?id=${id}`, headers: auth({ 'x-request-id': 'req-put' }), payload: { email: 'ann@example.org' } })
  await app.inject({ method: 'DELETE', url: `/users/${id}`, headers: auth({ 'x-request-id': 'req-delete' }) })

  const res = await app.inject({ url: '/audit-events?sort=createdAt', headers: auth() })
  t.equal(res.statusCode, 200)
  const events = res.json() as Event[]
  t.same(events.map((e) => [e.action, e.requestId, e.changes]), [
    ['user.create', 'req-create', { email: 'ann@example.com', name: 'Ann', active: true }],
    ['user.update', 'req-update', { name: null, active: false }],
    ['user.update', 'req-put', { email: 'ann@example.org' }],
    ['user.delete', 'req-delete', {}]
  ])
  for (const e of events) {
    t.match(e, { actorType: 'admin', actorId: admin.id, targetType: 'user', targetId: id })
    t.same(Object.keys(e).sort(), ['action', 'actorId', 'actorType', 'changes', 'createdAt', 'id', 'requestId', 'targetId', 'targetType'])
  }
  const newest = await app.inject({ url: '/audit-events', headers: auth() })
  t.same((newest.json() as Event[]).map((e) => e.action), ['user.delete', 'user.update', 'user.update', 'user.create'], 'newest first by default')

  // Refused changes leave no event.
  await app.inject({ method: 'PATCH', url: `/users/${id}`, headers: auth(), payload: { name: 'gone' } })
  await app.inject({ method: 'POST', url: '/users', headers: auth(), payload: { email: 'nope' } })
  t.equal(await count(app, 'audit_events'), 4)
})

t.test('an audit event rolls back with its change, and a change with its event', async (t) => {
  const { app, auth, createUser } = await usersFixture(t)
  const user = await createUser({ email: 'ann@example.com' })
  // A failure at the very end of the statement, after both rows were written.
  await app.pg.pool.query(`
    CREATE FUNCTION fail_on_boom() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'boom'; END $$;
    CREATE TRIGGER users_boom AFTER INSERT OR UPDATE ON users FOR EACH ROW WHEN (NEW.name = 'boom') EXECUTE FUNCTION fail_on_boom();
    CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'audit down'; END $$;
    CREATE TRIGGER audit_down AFTER INSERT ON audit_events FOR EACH ROW WHEN (NEW.request_id = 'audit-down') EXECUTE FUNCTION fail_audit();`)
  const events = await count(app, 'audit_events')

  const create = await app.inject({ method: 'POST', url: '/users', headers: auth(), payload: { email: 'boom@example.com', name: 'boom' } })
  t.equal(create.statusCode, 500)
  t.notMatch(create.body, /boom/, 'internals are not sent')
  const idem = await app.inject({ method: 'POST', url: '/users', headers: auth({ 'idempotency-key': 'k' }), payload: { email: 'boom@example.com', name: 'boom' } })
  t.equal(idem.statusCode, 500)
  const update = await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth(), payload: { name: 'boom' } })
  t.equal(update.statusCode, 500)
  t.equal(await count(app, 'audit_events'), events, 'no event outlived its failed change')
  t.equal(await count(app, 'users', "email = 'boom@example.com'"), 0)
  t.equal(await count(app, 'idempotency_keys'), 0)
  t.equal((await app.inject({ url: `/users/${user.id}`, headers: auth() })).json().name, null)

  for (const [method, url, payload] of [['POST', '/users', { email: 'bob@example.com' }], ['PATCH', `/users/${user.id}`, { name: 'Ann' }], ['DELETE', `/users/${user.id}`]] as const) {
    const res = await app.inject({ method, url, headers: auth({ 'x-request-id': 'audit-down' }), ...(payload === undefined ? {} : { payload }) })
    t.equal(res.statusCode, 500, `${method}: the audit insert failed`)
  }
  t.equal(await count(app, 'users', "email = 'bob@example.com'"), 0, 'no change outlived its failed event')
  t.match((await app.inject({ url: `/users/${user.id}`, headers: auth() })).json(), { name: null }, 'still there, unchanged')
  t.equal(await count(app, 'audit_events'), events)
})

t.test('a connection lost inside an idempotent create: 503, nothing kept, the pool recovers', async (t) => {
  const { app, auth } = await usersFixture(t)
  await app.pg.pool.query(`
    CREATE FUNCTION terminate_me() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$;
    CREATE TRIGGER users_terminate BEFORE INSERT ON users FOR EACH ROW WHEN (NEW.name = 'terminate') EXECUTE FUNCTION terminate_me();`)
  const res = await app.inject({ method: 'POST', url: '/users', headers: auth({ 'idempotency-key': 'lost' }), payload: { email: 'lost@example.com', name: 'terminate' } })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
  t.equal(problem(res).code, 'ROSTER_SERVICE_UNAVAILABLE')
  t.equal(await count(app, 'users'), 0)
  t.equal(await count(app, 'idempotency_keys'), 0)
  const retry = await app.inject({ method: 'POST', url: '/users', headers: auth({ 'idempotency-key': 'lost' }), payload: { email: 'lost@example.com', name: 'fine' } })
  t.equal(retry.statusCode, 201, 'the next request gets a healthy connection')
})

t.test('GET /audit-events: filters by actor, target and action, paged like /users', async (t) => {
  const { app, admin, auth, createUser } = await usersFixture(t)
  const { createAdmin, loginAs } = await import('../helper.ts')
  const other = await createAdmin(app)
  const otherSession = await loginAs(app, other)
  const ann = await createUser({ email: 'ann@example.com' })
  const bob = await app.inject({ method: 'POST', url: '/users', headers: otherSession.headers, payload: { email: 'bob@example.com' } })
  for (let i = 0; i < 5; i++) await app.inject({ method: 'PATCH', url: `/users/${ann.id}`, headers: auth(), payload: { name: `v${i}` } })
  await app.pg.pool.query("INSERT INTO audit_events (actor_id, action, target_type, target_id, changes) VALUES (NULL, 'admin.register', 'admin', $1, '{\"email\":\"x@example.com\"}')", [other.id])

  const list = async (q: string): Promise<Event[]> => {
    const res = await app.inject({ url: `/audit-events?${q}`, headers: auth() })
    t.equal(res.statusCode, 200, q)
    return res.json() as Event[]
  }
  t.equal((await list(`actorId=${admin.id}`)).length, 6)
  t.same((await list(`actorId=${other.id}`)).map((e) => e.targetId), [bob.json().id])
  t.equal((await list(`targetId=${ann.id}`)).length, 6)
  t.equal((await list(`targetId=${ann.id}&action=user.update`)).length, 5)
  t.same((await list('targetType=admin')).map((e) => [e.action, e.actorId]), [['admin.register', null]])
  t.equal((await list('action=user.create')).length, 2)
  t.same(await list('action=user.delete'), [])

  const seen: string[] = []
  let url: string | null = `/audit-events?targetId=${ann.id}&limit=4&count=true`
  while (url !== null) {
    const res: Awaited<ReturnType<typeof app.inject>> = await app.inject({ url, headers: auth() })
    t.equal(res.headers['x-total-count'], '6')
    seen.push(...(res.json() as Event[]).map((e) => e.id))
    url = res.headers.link === undefined ? null : (/<([^>]+)>/.exec(String(res.headers.link)) as RegExpExecArray)[1] as string
  }
  t.equal(new Set(seen).size, 6, 'two pages, every event once')
  for (const q of ['actorId=nope', 'targetType=role', 'action=DROP TABLE', 'sort=email', 'limit=500', 'extra=1']) {
    t.equal((await app.inject({ url: `/audit-events?${q}`, headers: auth() })).statusCode, 400, q)
  }
})
