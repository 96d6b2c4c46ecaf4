import t from 'tap'
import { etag, matchingVersions, noneMatchFails } from '../../src/infra/etag.ts'
import { count, problem, usersFixture } from './helpers.ts'

t.test('ETag and If-None-Match: 304 while the copy is current', async (t) => {
  const { app, auth, createUser } = await usersFixture(t)
  const user = await createUser({ email: 'ann@example.com' })
  const first = await app.inject({ url: `/users/${user.id}`, headers: auth() })
  const tag = first.headers.etag as string
  t.match(tag, /^"[0-9a-f-]{36}\.1"$/, 'strong (no W/)')

  for (const header of [tag, `W/${tag}`, `"other", ${tag}`, '*']) {
    const res = await app.inject({ url: `/users/${user.id}`, headers: auth({ 'if-none-match': header }) })
    t.equal(res.statusCode, 304, `If-None-Match: ${header}`)
    t.equal(res.body, '')
    t.equal(res.headers.etag, tag, 'a 304 carries the ETag')
  }
  const stale = await app.inject({ url: `/users/${user.id}`, headers: auth({ 'if-none-match': '"nope"' }) })
  t.equal(stale.statusCode, 200)

  await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth(), payload: { name: 'Ann' } })
  const changed = await app.inject({ url: `/users/${user.id}`, headers: auth({ 'if-none-match': tag }) })
  t.equal(changed.statusCode, 200, 'a changed user is sent again')
  t.not(changed.headers.etag, tag)
  t.equal(changed.json().name, 'Ann')
  const gone = await app.inject({ url: '/users/00000000-0000-4000-8000-000000000000', headers: auth({ 'if-none-match': '*' }) })
  t.equal(gone.statusCode, 404, 'a missing user is a 404, whatever If-None-Match says')
})

t.test('If-Match on PATCH and DELETE: 412 when stale, nothing changed', async (t) => {
  const { app, auth, createUser } = await usersFixture(t)
  const user = await createUser({ email: 'ann@example.com' })
  const v1 = `"${user.id}.1"`

  const ok = await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth({ 'if-match': v1 }), payload: { name: 'One' } })
  t.equal(ok.statusCode, 200)
  const v2 = ok.headers.etag as string
  t.equal(v2, `"${user.id}.2"`)

  const stale = await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth({ 'if-match': v1 }), payload: { name: 'Lost update' } })
  t.equal(stale.statusCode, 412)
  t.match(problem(stale), { code: 'ROSTER_PRECONDITION_FAILED', detail: /changed since/ })
  t.equal((await app.inject({ url: `/users/${user.id}`, headers: auth() })).json().name, 'One', 'the stale write changed nothing')

  for (const header of [`W/${v2}`, '"garbage"', `"${user.id}.x"`, '"00000000-0000-4000-8000-000000000000.2"', '']) {
    const res = await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth({ 'if-match': header }), payload: { name: 'No' } })
    t.equal(res.statusCode, 412, `If-Match: ${header} (strong comparison, this user only)`)
  }
  const listed = await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth({ 'if-match': `"a", ${v2}` }), payload: { name: 'Two' } })
  t.equal(listed.statusCode, 200, 'any tag of a list may match')
  const any = await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth({ 'if-match': '*' }), payload: { name: 'Three' } })
  t.equal(any.statusCode, 200, '* matches any version')
  t.equal((await app.inject({ method: 'PATCH', url: '/users/00000000-0000-4000-8000-000000000000', headers: auth({ 'if-match': '*' }), payload: { name: 'x' } })).statusCode, 404)

  const staleDelete = await app.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: auth({ 'if-match': v2 }) })
  t.equal(staleDelete.statusCode, 412)
  t.equal(await count(app, 'users'), 1)
  const current = (await app.inject({ url: `/users/${user.id}`, headers: auth() })).headers.etag as string
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: auth({ 'if-match': current }) })).statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: auth({ 'if-match': current }) })).statusCode, 404, 'a deleted user is a 404, not a 412')
  t.equal(await count(app, 'audit_events', "action = 'user.update'"), 3, 'only the applied updates were audited')
})

t.test('two writers with the same ETag: exactly one wins', async (t) => {
  const { app, auth, createUser } = await usersFixture(t)
  const user = await createUser({ email: 'ann@example.com' })
  const tag = `"${user.id}.1"`
  const results = await Promise.all(['A', 'B', 'C', 'D'].map((name) =>
    app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth({ 'if-match': tag }), payload: { name } })))
  t.same(results.map((r) => r.statusCode).sort(), [200, 412, 412, 412])
  t.equal(await count(app, 'audit_events', "action = 'user.update'"), 1)
})

t.test('REQUIRE_IF_MATCH=true: 428 without If-Match', async (t) => {
  const { app, auth, createUser } = await usersFixture(t, { REQUIRE_IF_MATCH: 'true' })
  const user = await createUser({ email: 'ann@example.com' })
  for (const [method, url, payload] of [['PATCH', `/users/${user.id}`, { name: 'x' }], ['DELETE', `/users/${user.id}`], ['PUT', `/user?id=${user.id}`, { name: 'x' }], ['DELETE', `/user?id=${user.id}`]] as const) {
    const res = await app.inject({ method, url, headers: auth(), ...(payload === undefined ? {} : { payload }) })
    t.equal(res.statusCode, 428, `${method} ${url}`)
    t.match(problem(res), { code: 'ROSTER_PRECONDITION_REQUIRED', detail: /If-Match is required/ })
  }
  t.equal(await count(app, 'users'), 1)
  t.equal((await app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: auth({ 'if-match': `"${user.id}.1"` }), payload: { name: 'x' } })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: auth({ 'if-match': '*' }) })).statusCode, 204, 'If-Match: * satisfies the requirement')
  t.equal((await app.inject({ method: 'POST', url: '/users', headers: auth(), payload: { email: 'bob@example.com' } })).statusCode, 201, 'creates need no If-Match')
})

t.test('entity-tag helpers', async (t) => {
  const id = '0f8fad5b-d9cb-469f-a165-70867728950e'
  t.equal(etag({ id, version: 3 }), `"${id}.3"`)
  t.equal(noneMatchFails(undefined, `"${id}.3"`), false)
  t.equal(noneMatchFails(' * ', `"${id}.3"`), true)
  t.equal(noneMatchFails('garbage', `"${id}.3"`), false)
  t.same(matchingVersions(undefined, id), null)
  t.same(matchingVersions('*', id), null)
  t.same(matchingVersions(`"${id}.3", W/"${id}.4", "${id.toUpperCase()}.5", "${id}.", "${id}.1234567890", "${id}.7"`, id.toUpperCase()), [3, 7], 'strong comparison: exact tags only, whatever the case of the id in the URL')
  t.same(matchingVersions('nothing quoted', id), [])
})
