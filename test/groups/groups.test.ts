import t from 'tap'
import { createAdmin, loginAs } from '../helper.ts'
import { count, problem, usersFixture } from '../users/helpers.ts'

interface GroupJson { id: string, displayName: string, description: string | null, createdAt: string, updatedAt: string, createdBy: string | null }

t.test('groups: create, read, change, delete; displayName unique case-insensitively; ETag and If-Match', async (t) => {
  const { app, admin, auth } = await usersFixture(t)
  const created = await app.inject({ method: 'POST', url: '/groups', headers: auth(), payload: { displayName: 'Engineering', description: 'Builds things' } })
  t.equal(created.statusCode, 201)
  const group = created.json<GroupJson>()
  t.match(group, { displayName: 'Engineering', description: 'Builds things', createdBy: admin.id })
  t.notOk('version' in group, 'the version is only in the ETag')
  t.notOk('externalId' in group, 'SCIM attributes stay in SCIM')
  t.equal(created.headers.location, `/groups/${group.id}`)
  t.equal(created.headers.etag, `"${group.id}.1"`)

  const taken = await app.inject({ method: 'POST', url: '/groups', headers: auth(), payload: { displayName: 'ENGINEERING' } })
  t.equal(taken.statusCode, 409)
  t.equal(problem(taken).code, 'ROSTER_GROUP_NAME_TAKEN')
  t.equal(await count(app, 'groups'), 1, 'nothing created')

  const got = await app.inject({ url: `/groups/${group.id}`, headers: auth() })
  t.same(got.json(), group)
  t.equal((await app.inject({ url: `/groups/${group.id}`, headers: auth({ 'if-none-match': String(got.headers.etag) }) })).statusCode, 304)
  t.equal((await app.inject({ url: '/groups/00000000-0000-4000-8000-000000000000', headers: auth() })).statusCode, 404)

  const stale = await app.inject({ method: 'PATCH', url: `/groups/${group.id}`, headers: auth({ 'if-match': `"${group.id}.7"` }), payload: { description: null } })
  t.equal(stale.statusCode, 412)
  const patched = await app.inject({ method: 'PATCH', url: `/groups/${group.id}`, headers: auth({ 'if-match': String(got.headers.etag) }), payload: { description: null, displayName: 'Eng' } })
  t.equal(patched.statusCode, 200)
  t.match(patched.json(), { displayName: 'Eng', description: null })
  t.equal(patched.headers.etag, `"${group.id}.2"`)
  const other = (await app.inject({ method: 'POST', url: '/groups', headers: auth(), payload: { displayName: 'Sales' } })).json<GroupJson>()
  const clash = await app.inject({ method: 'PATCH', url: `/groups/${other.id}`, headers: auth(), payload: { displayName: 'eng' } })
  t.equal(clash.statusCode, 409)
  t.equal((await app.inject({ method: 'PATCH', url: '/groups/00000000-0000-4000-8000-000000000000', headers: auth(), payload: { displayName: 'x' } })).statusCode, 404)

  t.equal((await app.inject({ method: 'DELETE', url: `/groups/${group.id}`, headers: auth({ 'if-match': `"${group.id}.1"` }) })).statusCode, 412)
  t.equal((await app.inject({ method: 'DELETE', url: `/groups/${group.id}`, headers: auth({ 'if-match': String(patched.headers.etag) }) })).statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: `/groups/${group.id}`, headers: auth() })).statusCode, 404)

  const actions = (await app.pg.pool.query("SELECT action FROM audit_events WHERE target_type = 'group' ORDER BY created_at, action")).rows.map((r) => r.action as string)
  t.same(actions.sort(), ['group.create', 'group.create', 'group.delete', 'group.update'].sort(), 'every change audited (the refused ones not)')
  const byType = await app.inject({ url: '/audit-events?targetType=group&action=group.update', headers: auth() })
  t.match(byType.json(), [{ targetId: group.id, changes: { displayName: 'Eng', description: null } }])
})

t.test('REQUIRE_IF_MATCH=true: a group change without If-Match is a 428', async (t) => {
  const { app, auth } = await usersFixture(t, { REQUIRE_IF_MATCH: 'true' })
  const group = (await app.inject({ method: 'POST', url: '/groups', headers: auth(), payload: { displayName: 'Ops' } })).json<GroupJson>()
  const res = await app.inject({ method: 'PATCH', url: `/groups/${group.id}`, headers: auth(), payload: { displayName: 'Ops2' } })
  t.equal(res.statusCode, 428)
  t.match(problem(res).detail, /ETag of the group/)
})

t.test('memberships: add (idempotent), list paged, users?group=, the user\'s groups and ETag, remove, group deletion', async (t) => {
  const { app, auth, createUser } = await usersFixture(t)
  const group = (await app.inject({ method: 'POST', url: '/groups', headers: auth(), payload: { displayName: 'Beta testers' } })).json<GroupJson>()
  const second = (await app.inject({ method: 'POST', url: '/groups', headers: auth(), payload: { displayName: 'alpha' } })).json<GroupJson>()
  const members = []
  for (let i = 0; i < 5; i++) members.push(await createUser({ email: `member${i}@example.com` }))
  const outsider = await createUser({ email: 'outsider@example.com' })
  const before = await app.inject({ url: `/users/${members[0]?.id as string}`, headers: auth() })
  t.same(before.json().groups, [])

  for (const m of members) t.equal((await app.inject({ method: 'PUT', url: `/groups/${group.id}/members/${m.id}`, headers: auth() })).statusCode, 204)
  t.equal((await app.inject({ method: 'PUT', url: `/groups/${group.id}/members/${members[0]?.id as string}`, headers: auth() })).statusCode, 204, 'again: still 204')
  t.equal(await count(app, 'audit_events', "action = 'membership.add'"), 5, 'one event per membership added, none for the repeat')
  t.equal((await app.inject({ method: 'PUT', url: `/groups/${second.id}/members/${members[0]?.id as string}`, headers: auth() })).statusCode, 204)

  const noUser = await app.inject({ method: 'PUT', url: `/groups/${group.id}/members/00000000-0000-4000-8000-000000000000`, headers: auth() })
  t.equal(noUser.statusCode, 404)
  t.match(problem(noUser), { code: 'ROSTER_NO_SUCH_MEMBER' })
  const noGroup = await app.inject({ method: 'PUT', url: `/groups/00000000-0000-4000-8000-000000000000/members/${outsider.id}`, headers: auth() })
  t.equal(noGroup.statusCode, 404)
  t.match(problem(noGroup).detail, /No group/)

  const user = await app.inject({ url: `/users/${members[0]?.id as string}`, headers: auth() })
  t.same(user.json().groups, [{ id: second.id, displayName: 'alpha' }, { id: group.id, displayName: 'Beta testers' }], 'the user\'s groups, by name')
  t.not(user.headers.etag, before.headers.etag, 'a membership change changes the user\'s ETag')
  t.equal((await app.inject({ url: `/users/${members[0]?.id as string}`, headers: auth({ 'if-none-match': String(before.headers.etag) }) })).statusCode, 200, 'so a stale copy is not "not modified"')
  t.notOk('groups' in (await app.inject({ url: `/user?id=${members[0]?.id as string}`, headers: auth() })).json(), 'the compatibility route keeps its shape')

  const page1 = await app.inject({ url: `/groups/${group.id}/members?limit=3&count=true`, headers: auth() })
  t.equal(page1.statusCode, 200)
  t.equal(page1.headers['x-total-count'], '5')
  const link = String(page1.headers.link)
  t.match(link, new RegExp(`^</groups/${group.id}/members\\?limit=3&count=true&cursor=`))
  const page2 = await app.inject({ url: link.slice(1, link.indexOf('>')), headers: auth() })
  const listed = [...page1.json<Array<{ id: string }>>(), ...page2.json<Array<{ id: string }>>()].map((u) => u.id)
  t.same(listed.sort(), members.map((m) => m.id).sort(), 'every member once, over two pages')
  t.equal(page2.headers.link, undefined)
  const filtered = await app.inject({ url: `/users?group=${group.id}&limit=200`, headers: auth() })
  t.same(filtered.json<Array<{ id: string }>>().map((u) => u.id).sort(), members.map((m) => m.id).sort(), 'GET /users?group= lists the same users')
  t.equal((await app.inject({ url: '/groups/00000000-0000-4000-8000-000000000000/members', headers: auth() })).statusCode, 404)

  const removed = await app.inject({ method: 'DELETE', url: `/groups/${group.id}/members/${members[1]?.id as string}`, headers: auth() })
  t.equal(removed.statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: `/groups/${group.id}/members/${members[1]?.id as string}`, headers: auth() })).statusCode, 404, 'not a member any more')
  t.match(problem(await app.inject({ method: 'DELETE', url: `/groups/00000000-0000-4000-8000-000000000000/members/${members[1]?.id as string}`, headers: auth() })).detail, /No group/)
  t.match((await app.pg.pool.query("SELECT changes FROM audit_events WHERE action = 'membership.remove'")).rows, [{ changes: { userId: members[1]?.id } }])

  const beforeDelete = (await app.inject({ url: `/users/${members[2]?.id as string}`, headers: auth() })).headers.etag
  t.equal((await app.inject({ method: 'DELETE', url: `/groups/${group.id}`, headers: auth() })).statusCode, 204)
  const after = await app.inject({ url: `/users/${members[2]?.id as string}`, headers: auth() })
  t.same(after.json().groups, [], 'the group\'s members stay users, without the group')
  t.not(after.headers.etag, beforeDelete, 'and their ETags change')
  t.equal(await count(app, 'group_members', 'group_id = $1', [group.id]), 0)

  t.equal((await app.inject({ method: 'DELETE', url: `/users/${members[0]?.id as string}`, headers: auth() })).statusCode, 204)
  t.equal(await count(app, 'group_members'), 0, 'a user\'s deletion removes their memberships')
})

t.test('GET /groups: keyset pages, sorted by name, filtered by exact name', async (t) => {
  const { app, auth } = await usersFixture(t)
  for (const name of ['delta', 'Alpha', 'charlie', 'Bravo', 'echo']) {
    t.equal((await app.inject({ method: 'POST', url: '/groups', headers: auth(), payload: { displayName: name } })).statusCode, 201)
  }
  const first = await app.inject({ url: '/groups?sort=displayName&limit=2', headers: auth() })
  t.same(first.json<GroupJson[]>().map((g) => g.displayName), ['Alpha', 'Bravo'], 'case-insensitive order')
  const link = String(first.headers.link)
  const next = await app.inject({ url: link.slice(1, link.indexOf('>')), headers: auth() })
  t.same(next.json<GroupJson[]>().map((g) => g.displayName), ['charlie', 'delta'])
  const desc = await app.inject({ url: '/groups?sort=-createdAt&limit=1', headers: auth() })
  t.same(desc.json<GroupJson[]>().map((g) => g.displayName), ['echo'])
  const exact = await app.inject({ url: '/groups?displayName=CHARLIE', headers: auth() })
  t.same(exact.json<GroupJson[]>().map((g) => g.displayName), ['charlie'])
})

t.test('a group created by an admin deleted a moment ago (its token still cached as live): 401, nothing created', async (t) => {
  // The longest cache: the check made by the first request is still trusted at the second, however slow the machine.
  const { app } = await usersFixture(t, { SESSION_CACHE_TTL: '5000' })
  const other = await createAdmin(app)
  const session = await loginAs(app, other)
  t.equal((await app.inject({ method: 'POST', url: '/groups', headers: session.headers, payload: { displayName: 'first' } })).statusCode, 201)
  await app.pg.pool.query('DELETE FROM admins WHERE id = $1', [other.id])
  const late = await app.inject({ method: 'POST', url: '/groups', headers: session.headers, payload: { displayName: 'late' } })
  t.equal(late.statusCode, 401)
  t.match(problem(late).detail, /no longer exists/)
  t.equal(await count(app, 'groups', "display_name = 'late'"), 0)
  t.equal(await count(app, 'groups', 'created_by IS NULL'), 1, 'the first group stays, its creator gone')
})
