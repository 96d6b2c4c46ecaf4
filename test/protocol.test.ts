/**
 * HTTP protocol defects, each as a class: media types and charsets of bodies,
 * HEAD on GET routes that act, errors raised before routing (over a real
 * socket), and token parameters in logged URLs whatever their encoding.
 */
import t from 'tap'
import { connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { build, createAdmin, fingerprint, loginAs } from './helper.ts'
import { clientToken, createClient } from './access/helpers.ts'
import { FORM } from '../src/infra/body.ts'
import { clientErrorProblem } from '../src/infra/problem.ts'

interface Doc { paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> }, security?: unknown }>> }

t.test('bodies: JSON in UTF-8 on every route; forms only where a route opts in', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000', MAIL_DISPATCHER: 'false' } })
  const admin = await createAdmin(app)
  const session = await loginAs(app, admin)
  const doc = (await app.inject({ url: '/apidocs/json' })).json() as Doc
  const withBody = Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).filter(([, op]) => op.requestBody !== undefined).map(([method, op]) => ({ path, method: method.toUpperCase(), op })))
  t.ok(withBody.length >= 10, `${withBody.length} operations take a body`)
  const refused = ['text/plain', 'text/plain; charset=utf-8', 'application/xml', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/json; charset="utf-16"', 'application/jsonx', 'application/merge-patch+json', 'text/json']
  // SCIM's operations are an API client's with scope scim (an admin gets 403 before any body is read), and answer SCIM errors.
  const scimAuth = await clientToken(app, await createClient(app, session, ['scim'], 'protocol'))
  for (const { path, method, op } of withBody) {
    const url = path.replace('{id}', admin.id)
    const scim = path.startsWith('/scim/')
    const headers = scim ? scimAuth : session.headers
    const before = await fingerprint(app)
    const forms = Object.keys(op.requestBody?.content ?? {}).includes(FORM)
    for (const type of [...refused, ...(forms ? [] : [FORM, `${FORM}; charset=utf-8`])]) {
      const res = await app.inject({ method: method as 'POST', url, headers: { ...headers, 'content-type': type }, payload: type.includes('json') ? '{"email":"a@example.com"}' : 'email=a%40example.com' })
      t.equal(res.statusCode, 415, `${method} ${path} ${type}`)
      t.match(res.json(), scim ? { schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '415' } : { code: 'ROSTER_UNSUPPORTED_MEDIA_TYPE', status: 415 })
    }
    const utf8 = await app.inject({ method: method as 'POST', url, headers: { ...headers, 'content-type': 'application/json; Charset="UTF-8"' }, payload: '[]' })
    if (Object.keys(op.requestBody?.content ?? {}).includes('application/json')) t.equal(utf8.statusCode, 400, `${method} ${path}: charset=UTF-8 is parsed (and an array refused)`)
    else t.equal(utf8.statusCode, 415, `${method} ${path} takes forms only`)
    t.same(await fingerprint(app), before, `${method} ${path}: nothing changed`)
  }
  const formRoutes = withBody.filter(({ op }) => Object.keys(op.requestBody?.content ?? {}).includes(FORM)).map(({ method, path }) => `${method} ${path}`)
  t.same(formRoutes.sort(), ['POST /auth/invitations/accept', 'POST /auth/password/reset', 'POST /auth/token'], 'the pages\' forms and OAuth\'s token endpoint are the routes taking forms')

  // A cross-site form cannot make Roster send reset emails.
  const forgot = await app.inject({ method: 'POST', url: '/auth/password/forgot', headers: { 'content-type': FORM }, payload: `email=${encodeURIComponent(admin.email)}` })
  t.equal(forgot.statusCode, 415)
  t.match(forgot.json(), { detail: /takes application\/json/ })
  await app.admins.drain()
  t.equal((await app.pg.pool.query('SELECT count(*)::int AS n FROM email_outbox')).rows[0].n, 0, 'no email queued')
  const form = await app.inject({ method: 'POST', url: '/auth/password/reset', headers: { 'content-type': `${FORM}; charset=utf-8` }, payload: 'token=nope&password=a+perfectly+fine+passphrase' })
  t.equal(form.statusCode, 400, 'the reset form is parsed (its token is unknown)')
  t.match(form.headers['content-type'], /text\/html/)
  const latin1 = await app.inject({ method: 'POST', url: '/auth/password/reset', headers: { 'content-type': `${FORM}; charset=iso-8859-1` }, payload: 'token=nope' })
  t.equal(latin1.statusCode, 415)
  const proto = await app.inject({ method: 'POST', url: '/auth/password/reset', headers: { 'content-type': FORM }, payload: '__proto__=x&token=t' })
  t.match(proto.body, /must NOT have additional properties/, 'a __proto__ field is a field like any other')
})

t.test('HEAD on a GET route never acts: the two that act answer 405, the others change nothing', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000', MAIL_DISPATCHER: 'false' } })
  const admin = await createAdmin(app, { confirmed: false })
  await app.pg.pool.query('UPDATE admins SET confirmed_at = now()')
  const session = await loginAs(app, admin)
  await app.pg.pool.query('UPDATE admins SET confirmed_at = NULL')
  const confirm = await app.admins.repository.issueToken(app.db, admin.id, 'confirm_account')
  const reset = await app.admins.repository.issueToken(app.db, admin.id, 'reset_password')

  const headConfirm = await app.inject({ method: 'HEAD', url: `/auth/confirm?token=${confirm}` })
  t.equal(headConfirm.statusCode, 405)
  t.equal(headConfirm.headers.allow, 'GET')
  const headRefresh = await app.inject({ method: 'HEAD', url: '/auth/refresh', headers: { authorization: `Bearer ${session.refreshToken}` } })
  t.equal(headRefresh.statusCode, 405)
  t.equal(headRefresh.headers.allow, 'GET, POST')

  const doc = (await app.inject({ url: '/apidocs/json' })).json() as Doc
  const gets = Object.keys(doc.paths).filter((p) => doc.paths[p]?.get !== undefined && !p.startsWith('/apidocs'))
  t.ok(gets.length >= 14, `${gets.length} GET routes`)
  const queries: Record<string, string> = { '/auth/confirm': `?token=${confirm}`, '/auth/password/reset': `?token=${reset}`, '/user': `?id=${admin.id}` }
  for (const path of gets) {
    const url = path.replace('{id}', admin.id) + (queries[path] ?? '')
    const before = await fingerprint(app)
    const res = await app.inject({ method: 'HEAD', url, headers: { ...session.headers, authorization: path === '/auth/refresh' ? `Bearer ${session.refreshToken}` : session.headers.authorization } })
    t.ok(res.statusCode < 500, `HEAD ${url.slice(0, 60)}: ${res.statusCode}`)
    t.equal(res.body, '', 'no body')
    t.same(await fingerprint(app), before, `HEAD ${path} changed nothing`)
  }
  t.equal((await app.inject({ url: `/auth/confirm?token=${confirm}` })).statusCode, 200, 'the link still works')
  t.equal((await app.inject({ url: '/auth/refresh', headers: { authorization: `Bearer ${session.refreshToken}` } })).statusCode, 200, 'so does the refresh token')
})

/** Sends raw bytes on a new connection; resolves with all that came back once the server closed it. */
async function raw (port: number, data: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect(port, '127.0.0.1', () => { socket.write(data) })
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', reject)
    socket.on('close', () => { resolve(Buffer.concat(chunks).toString('latin1')) })
  })
}

t.test('errors before routing (431, 414, 400, 408) are problem+json with X-Request-Id, over a real socket', async (t) => {
  const app = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as AddressInfo).port
  const doc = (await app.inject({ url: '/apidocs/json' })).json() as { components: { schemas: Record<string, unknown> } }
  const validate = new Ajv2020({ strict: false }).compile(doc.components.schemas.Problem as object)
  const cases: Array<[string, string, number, string, string]> = [
    ['headers too large', `GET /users?token=SECRET-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer SECRET-2\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`, 431, 'ROSTER_HEADERS_TOO_LARGE', '/users'],
    ['many headers', `GET /health/live HTTP/1.1\r\n${Array.from({ length: 500 }, (_, i) => `X-H${i}: ${'c'.repeat(40)}\r\n`).join('')}\r\n`, 431, 'ROSTER_HEADERS_TOO_LARGE', '/health/live'],
    ['request line too long', `GET /users?q=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414, 'ROSTER_URI_TOO_LONG', '/users'],
    ['path too long', `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414, 'ROSTER_URI_TOO_LONG', ''],
    ['malformed method', 'GE T / HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'ROSTER_BAD_REQUEST', ''],
    ['control character in the target', 'GET /users\x01 HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'ROSTER_BAD_REQUEST', ''],
    ['unknown version', 'GET /health/live HTTP/9.9\r\nHost: x\r\n\r\n', 400, 'ROSTER_BAD_REQUEST', '/health/live'],
    ['two content lengths', 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}', 400, 'ROSTER_BAD_REQUEST', '/auth/login']
  ]
  for (const [what, request, status, code, instance] of cases) {
    const answer = await raw(port, request)
    const [head = '', body = ''] = answer.split('\r\n\r\n')
    t.match(head, new RegExp(`^HTTP/1.1 ${status} `), what)
    t.match(head, /\r\ncontent-type: application\/problem\+json; charset=utf-8\r\n/i)
    const id = /\r\nx-request-id: ([0-9a-f-]{36})\r\n/i.exec(head)?.[1]
    t.ok(id, 'X-Request-Id')
    const problem = JSON.parse(body) as Record<string, unknown>
    t.ok(validate(problem), `${what}: a Problem`)
    t.match(problem, { status, code, requestId: id, instance })
    t.ok(app.logs.lines.some((l) => l.reqId === id && l.msg === 'request rejected before routing' && l.statusCode === status), 'logged with its id')
  }
  t.notMatch(app.logs.text(), /SECRET-/, 'nothing of what was sent reaches the log')

  // A connection already reset, or closed for writing, gets no answer (and nothing breaks).
  const clients: Socket[] = []
  const serverSide = async (): Promise<Socket> => {
    const accepted = new Promise<Socket>((resolve) => app.server.once('connection', resolve))
    clients.push(connect(port, '127.0.0.1'))
    return await accepted
  }
  const reset = await serverSide()
  const ended = await serverSide()
  app.server.emit('clientError', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), reset)
  t.equal(reset.destroyed, false, 'a reset connection is left to node')
  ended.end()
  app.server.emit('clientError', Object.assign(new Error('Parse Error'), { code: 'HPE_INVALID_METHOD' }), ended)
  t.equal(ended.destroyed, true, 'a connection closed for writing is destroyed without an answer')
  // Node's own request timeout (checked every 30 s, too slow to wait for here) raises this on the connection.
  const slow = await serverSide()
  const answered = new Promise<string>((resolve) => {
    let text = ''
    const client = clients.at(-1) as Socket
    client.on('data', (c: Buffer) => { text += c.toString() })
    client.on('close', () => { resolve(text) })
  })
  app.server.emit('clientError', Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), slow)
  t.match(await answered, /^HTTP\/1.1 408 Request Timeout\r\n[\s\S]*"code":"ROSTER_REQUEST_TIMEOUT"/)
  for (const c of clients) c.destroy()
})

t.test('token parameters are redacted from logged URLs whatever their encoding', async (t) => {
  const app = await build(t)
  t.equal(clientErrorProblem(new Error('who knows')).detail, 'The request is not valid HTTP (unreadable)')
  for (const query of ['flag&%74oken=SECRET-A', 'TOKEN=SECRET-B', 'Token%5B%5D=SECRET-C', 'x=1&%74%6F%6B%65%6E=SECRET-D', '%zz=SECRET-E', 'refresh%5Ftoken=SECRET-F', 'to+ken=SECRET-G&+token+=SECRET-H']) {
    await app.inject({ url: `/auth/confirm?${query}` })
  }
  t.notMatch(app.logs.text(), /SECRET-[A-F]|SECRET-H/)
  t.match(app.logs.text(), /SECRET-G/, 'a parameter of another name stays (to ken)')
  t.match(app.logs.text(), /"url":"\/auth\/confirm\?flag&%74oken=\[redacted\]"/)
})
