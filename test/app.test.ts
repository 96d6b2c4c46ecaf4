import t from 'tap'
import { build } from './helper.ts'

t.test('GET / names the service and its docs', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { name: 'roster', version: '1.0.0', docs: '/apidocs' })
})

t.test('problem+json for every framework error', async (t) => {
  const app = await build(t, {
    extend (app) {
      app.post('/test/echo', {
        config: { public: true },
        schema: {
          body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', maxLength: 5 }, n: { type: 'integer' } } }
        }
      }, async (req) => req.body)
      app.get('/test/boom', { config: { public: true } }, async () => { throw new Error('secret internals: password=hunter2') })
      app.get('/test/db-down', { config: { public: true } }, async () => { throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }) })
      app.get('/test/teapot', { config: { public: true } }, async () => { throw Object.assign(new Error('odd'), { statusCode: 302 }) })
      app.get('/test/plain-4xx', { config: { public: true } }, async () => { throw Object.assign(new Error('I am a teapot'), { statusCode: 418 }) })
    }
  })

  const isProblem = (res: { headers: Record<string, unknown>, json: () => Record<string, unknown> }, status: number, code: string): void => {
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    const body = res.json()
    t.equal(body.status, status)
    t.equal(body.code, code)
    for (const k of ['type', 'title', 'detail', 'instance']) t.type(body[k], 'string', `${k} present`)
  }

  const notFound = await app.inject({ url: '/nope?x=1' })
  t.equal(notFound.statusCode, 404)
  isProblem(notFound, 404, 'ROSTER_ROUTE_NOT_FOUND')
  t.equal(notFound.json().instance, '/nope')

  const wrongMethod = await app.inject({ method: 'DELETE', url: '/' })
  t.equal(wrongMethod.statusCode, 405)
  t.equal(wrongMethod.headers.allow, 'GET, HEAD')
  isProblem(wrongMethod, 405, 'ROSTER_METHOD_NOT_ALLOWED')

  const invalid = await app.inject({ method: 'POST', url: '/test/echo', payload: { name: 'toolong', n: 'x', extra: 1 } })
  t.equal(invalid.statusCode, 400)
  isProblem(invalid, 400, 'ROSTER_VALIDATION_FAILED')
  t.same(new Set(invalid.json().errors.map((e: { path: string }) => e.path)), new Set(['/body/name', '/body/n', '/body/extra']))

  const missing = await app.inject({ method: 'POST', url: '/test/echo', payload: {} })
  t.equal(missing.json().errors[0].path, '/body/name')

  const badJson = await app.inject({ method: 'POST', url: '/test/echo', headers: { 'content-type': 'application/json' }, payload: '{"name":' })
  t.equal(badJson.statusCode, 400)
  isProblem(badJson, 400, 'ROSTER_INVALID_BODY')

  const media = await app.inject({ method: 'POST', url: '/test/echo', headers: { 'content-type': 'text/xml' }, payload: '<a/>' })
  t.equal(media.statusCode, 415)
  isProblem(media, 415, 'ROSTER_UNSUPPORTED_MEDIA_TYPE')

  const big = await app.inject({ method: 'POST', url: '/test/echo', payload: { name: 'x'.repeat(20_000) } })
  t.equal(big.statusCode, 413)
  isProblem(big, 413, 'ROSTER_BODY_TOO_LARGE')

  const boom = await app.inject({ url: '/test/boom' })
  t.equal(boom.statusCode, 500)
  isProblem(boom, 500, 'ROSTER_INTERNAL_ERROR')
  t.notMatch(boom.body, /secret|hunter2|stack|\.ts:\d/i, '500 reveals nothing')

  const down = await app.inject({ url: '/test/db-down' })
  t.equal(down.statusCode, 503)
  t.equal(down.headers['retry-after'], '5')
  isProblem(down, 503, 'ROSTER_SERVICE_UNAVAILABLE')

  const odd = await app.inject({ url: '/test/teapot' })
  t.equal(odd.statusCode, 500, 'a non-error status on an error becomes 500')

  const plain = await app.inject({ url: '/test/plain-4xx' })
  t.equal(plain.statusCode, 418)
  isProblem(plain, 418, 'ROSTER_BAD_REQUEST')
  t.equal(plain.json().detail, 'I am a teapot', '4xx details are shown')

  const levels = (code: string): unknown[] => app.logs.lines.filter((l) => l.code === code || (l.err as { code?: string } | undefined)?.code === code).map((l) => l.level)
  t.same(levels('ROSTER_ROUTE_NOT_FOUND'), [30], '4xx logged at info')
  const errorLine = app.logs.lines.find((l) => l.level === 50 && l.msg === 'request failed')
  t.ok(errorLine, '5xx logged at error')
  t.match((errorLine?.err as { stack?: string }).stack, /secret internals/, 'the stack goes to the log, not the client')
})

t.test('request ids: sane client ids are kept, others replaced', async (t) => {
  const app = await build(t)
  const kept = await app.inject({ url: '/', headers: { 'x-request-id': 'abc-123' } })
  t.equal(kept.headers['x-request-id'], 'abc-123')
  const replaced = await app.inject({ url: '/', headers: { 'x-request-id': 'bad id\twith spaces' } })
  t.match(replaced.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  const generated = await app.inject({ url: '/nope' })
  t.equal(generated.json().requestId, generated.headers['x-request-id'])
})

t.test('secrets are redacted from logs', async (t) => {
  const app = await build(t, {
    extend (app) {
      app.post('/test/log', { config: { public: true } }, async (req) => {
        req.log.info({ body: req.body }, 'body')
        return {}
      })
    }
  })
  await app.inject({ method: 'POST', url: '/test/log', headers: { authorization: 'Bearer abc.def.ghi', cookie: 'sid=s3cr3t' }, payload: { password: 'hunter2hunter2', token: 'tok-value', nested: { refresh_token: 'rt-value' } } })
  const text = app.logs.text()
  for (const secret of ['abc.def.ghi', 's3cr3t', 'hunter2hunter2', 'tok-value', 'rt-value']) t.notMatch(text, secret, `${secret} not logged`)
  t.match(text, /\[redacted\]/)
})

t.test('the errors a route shape implies are documented for it', async (t) => {
  const app = await build(t, {
    extend (app) {
      const response = { 200: { type: 'object', properties: {} } }
      app.get('/test/q', { config: { permission: 'self' }, schema: { querystring: { type: 'object', properties: { a: { type: 'string' } } }, response } }, async () => ({}))
      app.get('/test/p/:id', { config: { public: true }, schema: { params: { type: 'object', properties: { id: { type: 'string' } } }, response } }, async () => ({}))
      app.get('/test/h', { config: { public: true }, schema: { headers: { type: 'object', properties: { 'x-a': { type: 'string' } } }, response } }, async () => ({}))
      app.post('/test/b', { config: { public: true }, schema: { body: { type: 'object' }, response } }, async () => ({}))
      app.get('/test/none', { config: { public: true }, schema: { response } }, async () => ({}))
      app.delete('/test/d', { config: { public: true }, schema: { response } }, async () => ({}))
    }
  })
  const doc = (await app.inject({ url: '/apidocs/json' })).json()
  const statuses = (path: string, method = 'get') => Object.keys(doc.paths[path][method].responses).sort()
  t.same(statuses('/test/q'), ['200', '400', '401', '403', '500', '503'])
  t.same(statuses('/test/p/{id}'), ['200', '400', '414', '500', '503'], 'an overlong path parameter is a 414')
  t.same(statuses('/test/h'), ['200', '400', '500', '503'])
  t.same(statuses('/test/b', 'post'), ['200', '400', '413', '415', '500', '503'])
  t.same(statuses('/test/none'), ['200', '500', '503'])
  t.same(statuses('/test/d', 'delete'), ['200', '400', '413', '415', '500', '503'], 'a DELETE may be sent a body, declared or not')
})
