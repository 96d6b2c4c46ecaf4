import t from 'tap'
import { build, createAdmin, loginAs, waitForEmail } from '../helper.ts'

const PASSWORD = 'correct horse battery staple'

t.test('the first admin to confirm is an owner; later ones get REGISTRATION_ROLE', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000' } })
  const register = async (email: string, name: string): Promise<void> => {
    t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { email, name, password: PASSWORD } })).statusCode, 201)
    t.equal((await app.inject({ url: `/auth/confirm?token=${(await waitForEmail(app, email)).token}` })).statusCode, 200)
  }
  await register('ann@example.com', 'ann')
  await register('bob@example.com', 'bob')
  const role = async (email: string): Promise<string> => (await app.inject({ url: '/auth/me', headers: (await loginAs(app, { email, password: PASSWORD })).headers })).json().role
  t.equal(await role('ann@example.com'), 'owner')
  t.equal(await role('bob@example.com'), 'viewer', 'REGISTRATION_ROLE defaults to viewer')

  const other = await build(t, { env: { REGISTRATION_ROLE: 'admin' } })
  await createAdmin(other)
  t.equal((await other.inject({ method: 'POST', url: '/auth/register', payload: { email: 'cy@example.com', name: 'cyd', password: PASSWORD } })).json().role, 'admin')
  const invite = await build(t, { env: { REGISTRATION: 'invite' } })
  const refused = await invite.inject({ method: 'POST', url: '/auth/register', payload: { email: 'cy@example.com', name: 'cyd', password: PASSWORD } })
  t.equal(refused.statusCode, 403)
  t.match(refused.json(), { code: 'ROSTER_REGISTRATION_CLOSED', detail: /by invitation only/ })
})

t.test('what a viewer and an admin may do; the compatibility routes work for an admin', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000' } })
  const viewer = (await loginAs(app, await createAdmin(app, { role: 'viewer' }))).headers
  t.equal((await app.inject({ url: '/users', headers: viewer })).statusCode, 200)
  const denied = await app.inject({ method: 'POST', url: '/users', headers: viewer, payload: { email: 'a@example.com' } })
  t.equal(denied.statusCode, 403)
  t.match(denied.json(), { code: 'ROSTER_FORBIDDEN', detail: /permission users:write, which your role \(viewer\)/ })
  t.equal((await app.inject({ url: '/auth/admins', headers: viewer })).statusCode, 403, 'a viewer does not see the admins')
  t.equal((await app.inject({ url: '/audit-events', headers: viewer })).statusCode, 403, 'nor the audit log')

  const admin = (await loginAs(app, await createAdmin(app, { role: 'admin' }))).headers
  const created = await app.inject({ method: 'POST', url: '/user', headers: admin, payload: { email: 'compat@example.com' } })
  t.equal(created.statusCode, 201)
  const id = created.json().id as string
  t.equal((await app.inject({ url: `/user?id=${id}`, headers: admin })).statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: `/user?id=${id}`, headers: admin, payload: { name: 'Compat' } })).json().name, 'Compat')
  t.equal((await app.inject({ method: 'DELETE', url: `/user?id=${id}`, headers: admin })).statusCode, 200)
  t.equal((await app.inject({ url: '/audit-events', headers: admin })).statusCode, 200)
  t.equal((await app.inject({ url: '/auth/admins', headers: admin })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/auth/invitations', headers: admin, payload: { email: 'x@example.com', role: 'viewer' } })).statusCode, 403)
})

t.test('owners change roles and remove admins; within the revocation bound; never the last owner', async (t) => {
  const first = await build(t, { env: { AUTH_RATE_LIMIT: '100000', SESSION_CACHE_TTL: '300' } })
  const second = await build(t, { databaseUrl: first.databaseUrl, env: { SESSION_CACHE_TTL: '300' } })
  const owner = await createAdmin(first)
  const o = (await loginAs(first, owner)).headers
  const ann = await createAdmin(first, { role: 'viewer' })
  const a = await loginAs(first, ann)
  t.equal((await second.inject({ method: 'POST', url: '/users', headers: a.headers, payload: { email: 'one@example.com' } })).statusCode, 403, 'a viewer, cached as such on the second instance')

  const promoted = await first.inject({ method: 'PATCH', url: `/auth/admins/${ann.id}`, headers: o, payload: { role: 'admin' } })
  t.equal(promoted.statusCode, 200)
  t.equal(promoted.json().role, 'admin')
  t.equal((await first.inject({ method: 'POST', url: '/users', headers: a.headers, payload: { email: 'two@example.com' } })).statusCode, 201, 'at once on the instance that made the change')
  await new Promise((resolve) => setTimeout(resolve, 350))
  t.equal((await second.inject({ method: 'POST', url: '/users', headers: a.headers, payload: { email: 'three@example.com' } })).statusCode, 201, 'within the cache bound on the others')
  t.equal((await first.inject({ method: 'PATCH', url: `/auth/admins/${ann.id}`, headers: o, payload: { role: 'admin' } })).statusCode, 200, 'the same role again changes nothing')
  t.equal((await first.inject({ method: 'PATCH', url: '/auth/admins/00000000-0000-4000-8000-000000000000', headers: o, payload: { role: 'admin' } })).statusCode, 404)

  const lastDemote = await first.inject({ method: 'PATCH', url: `/auth/admins/${owner.id}`, headers: o, payload: { role: 'viewer' } })
  t.equal(lastDemote.statusCode, 409)
  t.equal(lastDemote.json().code, 'ROSTER_LAST_OWNER')
  t.equal((await first.inject({ method: 'DELETE', url: `/auth/admins/${owner.id}`, headers: o })).statusCode, 409)
  t.equal((await first.inject({ method: 'DELETE', url: '/auth/me', headers: o, payload: { currentPassword: owner.password } })).statusCode, 409, 'nor leave')

  // Two owners demoting each other at once: one of them stays an owner.
  t.equal((await first.inject({ method: 'PATCH', url: `/auth/admins/${ann.id}`, headers: o, payload: { role: 'owner' } })).statusCode, 200)
  const annOwner = (await loginAs(first, ann)).headers
  const [x, y] = await Promise.all([
    first.inject({ method: 'PATCH', url: `/auth/admins/${ann.id}`, headers: o, payload: { role: 'viewer' } }),
    first.inject({ method: 'PATCH', url: `/auth/admins/${owner.id}`, headers: annOwner, payload: { role: 'viewer' } })
  ])
  t.same([x.statusCode, y.statusCode].sort(), [200, 409])
  const { rows } = await first.pg.pool.query("SELECT count(*)::int AS n FROM admins WHERE role = 'owner'")
  t.equal(rows[0].n, 1)

  // Removing an admin ends their sessions.
  const [remaining, removedId, removed] = x.statusCode === 200 ? [o, ann.id, a.headers] : [annOwner, owner.id, o]
  t.equal((await first.inject({ method: 'DELETE', url: `/auth/admins/${removedId}`, headers: remaining })).statusCode, 204)
  t.equal((await first.inject({ url: '/auth/me', headers: removed })).statusCode, 401)
  t.equal((await first.inject({ method: 'DELETE', url: `/auth/admins/${removedId}`, headers: remaining })).statusCode, 404)
  const { rows: events } = await first.pg.pool.query("SELECT action, actor_type FROM audit_events WHERE action IN ('admin.role_change', 'admin.delete') ORDER BY created_at")
  t.same(events.map((e) => e.action), ['admin.role_change', 'admin.role_change', 'admin.role_change', 'admin.delete'])
})
