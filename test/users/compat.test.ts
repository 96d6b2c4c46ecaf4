import t from 'tap'
import { count, problem, usersFixture } from './helpers.ts'

t.test('GET|POST|PUT|DELETE /user behave like /users/{id}', async (t) => {
  const { app, admin, auth } = await usersFixture(t)
  const created = await app.inject({ method: 'POST', url: '/user', headers: auth(), payload: { email: 'ann@example.com', name: 'Ann' } })
  t.equal(created.statusCode, 201)
  const user = created.json()
  t.match(user, { email: 'ann@example.com', name: 'Ann', active: true, createdBy: admin.id })
  t.equal(created.headers.location, `/users/${user.id as string}`)
  t.equal(created.headers.etag, `"${user.id as string}.1"`)

  const read = await app.inject({ url: `/user?id=${user.id as string}`, headers: auth() })
  t.equal(read.statusCode, 200)
  t.same(read.json(), user)
  t.equal(read.headers.etag, created.headers.etag)
  t.equal((await app.inject({ url: `/user?id=${user.id as string}`, headers: auth({ 'if-none-match': read.headers.etag as string }) })).statusCode, 304)
  t.equal((await app.inject({ url: `/user/?id=${user.id as string}`, headers: auth() })).statusCode, 200, 'with a trailing slash too')

  const put = await app.inject({ method: 'PUT', url: `/user?id=${user.id as string}`, headers: auth(), payload: { active: false } })
  t.equal(put.statusCode, 200)
  t.match(put.json(), { email: 'ann@example.com', name: 'Ann', active: false }, 'PUT is a partial update, as before')
  t.equal(put.headers.etag, `"${user.id as string}.2"`)
  t.equal((await app.inject({ method: 'PUT', url: `/user?id=${user.id as string}`, headers: auth({ 'if-match': created.headers.etag as string }), payload: { name: 'x' } })).statusCode, 412)

  const deleted = await app.inject({ method: 'DELETE', url: `/user?id=${user.id as string}`, headers: auth() })
  t.equal(deleted.statusCode, 200, 'DELETE answers 200 with the deleted user, as the old service did')
  t.same(deleted.json(), put.json())
  t.equal(await count(app, 'users'), 0)
  t.equal((await app.inject({ method: 'DELETE', url: `/user?id=${user.id as string}`, headers: auth() })).statusCode, 404)
  t.equal((await app.inject({ url: `/user?id=${user.id as string}`, headers: auth() })).statusCode, 404)
})

t.test('a missing or malformed id is a 400 problem, never a 500', async (t) => {
  const { app, auth } = await usersFixture(t)
  const ids = ['', '?', '?id=', '?id=42', '?id=not-a-uuid', "?id=1' OR '1'='1", '?id=%00', '?id=00000000-0000-4000-8000-000000000000&extra=1', '?id=a&id=b']
  for (const method of ['GET', 'PUT', 'DELETE'] as const) {
    for (const query of ids) {
      const res = await app.inject({ method, url: `/user${query}`, headers: auth(), ...(method === 'PUT' ? { payload: { name: 'x' } } : {}) })
      t.equal(res.statusCode, 400, `${method} /user${query}`)
      t.equal(problem(res).code, 'ROSTER_VALIDATION_FAILED')
    }
  }
  t.equal((await app.inject({ method: 'PATCH', url: '/user?id=00000000-0000-4000-8000-000000000000', headers: auth(), payload: {} })).statusCode, 405, 'PATCH was never a /user method')
})

t.test('the compatibility routes are deprecated in the OpenAPI document and list their statuses and headers', async (t) => {
  const { app } = await usersFixture(t)
  const doc = (await app.inject({ url: '/apidocs/json' })).json()
  for (const method of ['get', 'post', 'put', 'delete']) {
    t.equal(doc.paths['/user'][method].deprecated, true, `${method} /user deprecated`)
    t.ok(doc.paths['/user'][method].tags.includes('compatibility'))
  }
  t.same(Object.keys(doc.paths['/user'].delete.responses).sort(), ['200', '400', '401', '403', '404', '412', '413', '415', '428', '500', '503'])
  const ops = doc.paths['/users']
  t.same(Object.keys(ops.get.responses['200'].headers).sort(), ['Link', 'X-Total-Count'])
  t.same(Object.keys(ops.post.responses['201'].headers).sort(), ['ETag', 'Idempotent-Replayed', 'Location'])
  t.same(Object.keys(ops.post.responses).sort(), ['201', '400', '401', '403', '409', '413', '415', '422', '500', '503'])
  const one = doc.paths['/users/{id}']
  t.same(Object.keys(one.get.responses).sort(), ['200', '304', '400', '401', '403', '404', '414', '500', '503'])
  t.same(Object.keys(one.patch.responses).sort(), ['200', '400', '401', '403', '404', '409', '412', '413', '414', '415', '428', '500', '503'])
  t.same(Object.keys(one.delete.responses).sort(), ['204', '400', '401', '403', '404', '412', '413', '414', '415', '428', '500', '503'])
  t.ok(one.get.responses['200'].headers.ETag)
  t.ok(one.get.responses['503'].headers['Retry-After'])
  t.equal(one.get.responses['304'].content, undefined, 'a 304 has no body')
  t.ok(one.patch.parameters.some((p: { in: string, name: string }) => p.in === 'header' && p.name === 'if-match'))
  t.ok(ops.post.parameters.some((p: { in: string, name: string }) => p.in === 'header' && p.name === 'idempotency-key'))
  t.ok(doc.components.schemas.User)
})
