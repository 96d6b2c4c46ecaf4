import t from 'tap'
import { build } from './helper.ts'

const API_CSP = "default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'"

t.test('API answers carry headers for an API: nothing runs, nothing frames, nothing sniffs', async (t) => {
  const app = await build(t)
  for (const url of ['/', '/no/such/route', '/health/ready']) {
    const res = await app.inject({ url })
    t.equal(res.headers['content-security-policy'], API_CSP, `${url}: CSP`)
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.equal(res.headers['x-frame-options'], 'DENY')
    t.equal(res.headers['referrer-policy'], 'no-referrer')
    t.equal(res.headers['cross-origin-resource-policy'], 'same-origin')
    t.equal(res.headers['cross-origin-opener-policy'], 'same-origin')
    t.equal(res.headers['strict-transport-security'], undefined, 'no HSTS over plain http')
    t.equal(res.headers['access-control-allow-origin'], undefined, 'CORS off by default')
    t.equal(res.headers['x-powered-by'], undefined)
  }
  const preflight = await app.inject({ method: 'OPTIONS', url: '/', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' } })
  t.equal(preflight.headers['access-control-allow-origin'], undefined, 'no preflight answer without CORS_ORIGINS')
  t.match(preflight.headers['content-type'], /^application\/problem\+json/)
})

t.test('the docs page gets a policy that lets Swagger UI load its own assets and call the API, nothing else', async (t) => {
  const app = await build(t, { env: { PUBLIC_URL: 'http://roster.test:8080' } })
  for (const url of ['/apidocs', '/apidocs/static/swagger-initializer.js', '/apidocs/static/swagger-ui-bundle.js']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, url)
    const csp = res.headers['content-security-policy'] as string
    t.match(csp, /default-src 'none'/)
    t.match(csp, /script-src 'self'(;|$)/, 'scripts from the page\'s own origin only, none inline')
    t.match(csp, /style-src 'self' 'sha256-[A-Za-z0-9+/]+=*'/, 'its one inline style by hash')
    t.match(csp, /connect-src 'self' http:\/\/roster\.test:8080/, '"Try it out" reaches PUBLIC_URL')
    t.match(csp, /frame-ancestors 'none'/)
    t.notMatch(csp, /unsafe-inline|unsafe-eval|upgrade-insecure-requests/)
  }
  // The UI's own HTML references no other origin and inlines no script.
  const html = (await app.inject({ url: '/apidocs' })).body
  t.notMatch(html, /<script>|<script [^>]*>[^<\s]/, 'no inline script')
  t.notMatch(html, /(src|href)="https?:/, 'no asset from elsewhere')
})

t.test('over https: HSTS, and the docs upgrade insecure requests', async (t) => {
  const app = await build(t, { env: { PUBLIC_URL: 'https://roster.example.com' } })
  const res = await app.inject({ url: '/' })
  t.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains')
  const docs = await app.inject({ url: '/apidocs' })
  t.match(docs.headers['content-security-policy'], /upgrade-insecure-requests/)
})

t.test('CORS_ORIGINS: those origins may call the API from a browser, others may not', async (t) => {
  const app = await build(t, {
    env: { CORS_ORIGINS: 'https://app.example.com, https://admin.example.com' },
    extend (app) {
      app.get('/test/cors-private', { config: { permission: 'self' } }, async () => ({ ok: true }))
    }
  })
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/users/123',
    headers: { origin: 'https://app.example.com', 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'authorization, if-match, content-type' }
  })
  t.equal(preflight.statusCode, 204, 'preflight answered before authentication')
  t.equal(preflight.headers['access-control-allow-origin'], 'https://app.example.com')
  t.match(preflight.headers['access-control-allow-methods'], /PATCH/)
  t.match(preflight.headers['access-control-allow-headers'], /Authorization/)
  t.match(preflight.headers['access-control-allow-headers'], /If-Match/)
  t.equal(preflight.headers['access-control-max-age'], '600')
  t.equal(preflight.headers['access-control-allow-credentials'], undefined, 'bearer tokens, no cookies')
  t.match(preflight.headers.vary, /Origin/)

  const get = await app.inject({ url: '/', headers: { origin: 'https://admin.example.com' } })
  t.equal(get.statusCode, 200)
  t.equal(get.headers['access-control-allow-origin'], 'https://admin.example.com')
  t.match(get.headers['access-control-expose-headers'], /X-Request-Id/)
  t.match(get.headers['access-control-expose-headers'], /ETag/)

  const unauthorized = await app.inject({ url: '/test/cors-private', headers: { origin: 'https://app.example.com' } })
  t.equal(unauthorized.statusCode, 401)
  t.equal(unauthorized.headers['access-control-allow-origin'], 'https://app.example.com', 'a 401 is readable by the allowed page')

  const other = await app.inject({ url: '/', headers: { origin: 'https://evil.example.net' } })
  t.equal(other.headers['access-control-allow-origin'], undefined, 'an origin not listed gets no CORS grant')
  const otherPreflight = await app.inject({ method: 'OPTIONS', url: '/', headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'DELETE' } })
  t.equal(otherPreflight.headers['access-control-allow-origin'], undefined)

  const notFound = await app.inject({ url: '/no/such/route' })
  t.equal(notFound.statusCode, 404, 'the preflight catch-all makes no unknown path a 405')
  const wrongMethod = await app.inject({ method: 'DELETE', url: '/' })
  t.equal(wrongMethod.statusCode, 405)
  t.notOk(Object.keys((await app.inject({ url: '/apidocs/json' })).json().paths).includes('*'), 'the preflight route is not an API operation')
})

t.test('CORS_ORIGINS=*: any origin', async (t) => {
  const app = await build(t, { env: { CORS_ORIGINS: '*' } })
  const res = await app.inject({ url: '/', headers: { origin: 'https://anywhere.example' } })
  t.equal(res.headers['access-control-allow-origin'], '*')
})
