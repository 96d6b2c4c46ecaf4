/**
 * Values that pass a naive schema but that PostgreSQL (or a mail server)
 * cannot hold are 400s naming the field, for every class: numbers, times,
 * text, email addresses; and bodies are never coerced to the schema's types.
 * The fuzzer (test/fuzz.test.ts) sends the same classes to every field of
 * every operation; these are the regression cases, asserted one by one.
 */
import t from 'tap'
import { createSigner } from 'fast-jwt'
import { buildValidator, isDateTime } from '../src/infra/validation.ts'
import { isEmail } from '../src/infra/email.ts'
import { illFormedPath } from '../src/infra/body.ts'
import { usersFixture } from './users/helpers.ts'

/** The fields a 400 names. */
const paths = (body: { errors?: Array<{ path: string }> }): string[] => (body.errors ?? []).map((e) => e.path).sort()

t.test('numbers in query strings: plain decimals PostgreSQL can hold, on every list', async (t) => {
  const { app, auth } = await usersFixture(t)
  for (const list of ['/users', '/audit-events', '/auth/admins']) {
    for (const limit of ['Infinity', '-Infinity', '1e400', '1e309', 'NaN', '-0', '1e2', '0x10', ' 5', '5 ', '+5', '05', '9007199254740993', '1'.repeat(400), '', '1.5']) {
      const res = await app.inject({ url: `${list}?limit=${encodeURIComponent(limit)}`, headers: auth() })
      t.equal(res.statusCode, 400, `${list}?limit=${limit.slice(0, 20)}`)
      t.match(res.json(), { code: 'ROSTER_VALIDATION_FAILED' })
      t.same(paths(res.json()), ['/querystring/limit'])
    }
    t.equal((await app.inject({ url: `${list}?limit=200`, headers: auth() })).statusCode, 200, `${list}: 200 is the largest limit`)
    t.equal((await app.inject({ url: `${list}?limit=201`, headers: auth() })).statusCode, 400)
    t.equal((await app.inject({ url: `${list}?limit=1&limit=2`, headers: auth() })).statusCode, 400, 'a repeated number')
  }
  const both = await app.inject({ url: '/users?limit=0x10&active=maybe', headers: auth() })
  t.same(paths(both.json()), ['/querystring/active', '/querystring/limit'], 'every bad field is named at once')
})

t.test('times: RFC 3339 within what PostgreSQL takes', async (t) => {
  const { app, auth, createUser } = await usersFixture(t)
  await createUser({ email: 'one@example.com' })
  const refused = [
    '0000-01-01T00:00:00Z', '2020-01-01T00:00:00+23:59', '2020-01-01T00:00:00-14:01', '2020-01-01T00:00:00+16:00',
    `2020-01-01T00:00:00.${'1'.repeat(300)}Z`, '2020-01-01T00:00:00.1234567891Z', '2020-02-30T00:00:00Z', '2021-02-29T00:00:00Z',
    '2020-04-31T00:00:00Z', '2020-13-01T00:00:00Z', '2020-00-10T00:00:00Z', '2020-01-00T00:00:00Z', '2020-01-01T24:00:00Z',
    '2020-01-01T00:60:00Z', '2020-01-01T00:00:61Z', '2020-01-01T12:00:60Z', '2020-01-01T00:00:00+01:60', '2020-01-01 00:00:00Z',
    '2020-01-01T00:00:00', '2020-01-01', '+012020-01-01T00:00:00Z', '294277-01-01T00:00:00Z', '2020-01-01T00:00:00.Z',
    'yesterday', '1577836800', '２０２０-01-01T00:00:00Z'
  ]
  for (const value of refused) {
    const res = await app.inject({ url: `/users?createdAfter=${encodeURIComponent(value)}`, headers: auth() })
    t.equal(res.statusCode, 400, value.slice(0, 40))
    t.same(paths(res.json()), ['/querystring/createdAfter'])
  }
  const taken = ['2000-01-01T00:00:00Z', '2000-01-01t00:00:00z', '0001-01-01T00:00:00+14:00', '9999-12-31T23:59:59.999999999-14:00', '2016-12-31T23:59:60Z', '2017-01-01T00:59:60+01:00', '2020-02-29T00:00:00Z', '2000-02-29T00:00:00Z']
  for (const value of taken) {
    const res = await app.inject({ url: `/users?createdAfter=${encodeURIComponent(value)}`, headers: auth() })
    t.equal(res.statusCode, 200, value)
  }
  t.same((await app.inject({ url: `/users?createdBefore=${encodeURIComponent('9999-12-31T23:59:59Z')}`, headers: auth() })).json().length, 1)
  t.equal(isDateTime('1900-02-29T00:00:00Z'), false, 'not a leap year')
  t.equal(isDateTime('2020-01-01T00:00:00+14:00'), true)
})

t.test('text: no lone surrogates, controls, bidi or invisible characters; named fields, nothing stored', async (t) => {
  const { app, auth, createUser } = await usersFixture(t)
  const user = await createUser({ email: 'target@example.com', name: 'Target' })
  const json = (payload: string) => ({ headers: auth({ 'content-type': 'application/json' }), payload })
  const surrogates = ['a\\ud800', '\\udfff', 'x\\ud83dy', '\\ud83d\\ud83d\\ude00']
  for (const s of surrogates) {
    for (const [method, url] of [['POST', '/users'], ['PATCH', `/users/${user.id}`], ['PATCH', '/users/00000000-0000-4000-8000-000000000000']] as const) {
      const res = await app.inject({ method, url, ...json(`{"email":"s@example.com","name":"${s}"}`) })
      t.equal(res.statusCode, 400, `${method} ${url} name ${s}`)
      t.match(res.json(), { code: 'ROSTER_VALIDATION_FAILED', errors: [{ path: '/body/name', message: /well-formed Unicode/ }] })
    }
  }
  const inKey = await app.inject({ method: 'POST', url: '/users', ...json('{"email":"s@example.com","\\ud800":1}') })
  t.match(inKey.json(), { errors: [{ path: '/body/\ud800' }] }, 'a property name too')
  const nested = await app.inject({ method: 'POST', url: '/users', ...json('{"email":"s@example.com","a/b":[{"~":"\\udc00"}]}') })
  t.match(nested.json(), { errors: [{ path: '/body/a~1b/0/~0' }] }, 'named by JSON pointer')
  t.equal(illFormedPath({ fine: ['😀', { ключ: 'значение' }] }), undefined, 'pairs are fine')
  t.equal(illFormedPath('\ud800'), '')
  const password = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"email":"a@example.com","password":"long enough \\ud800 password"}' })
  t.match(password.json(), { errors: [{ path: '/body/password' }] }, 'passwords too: they take any character, but only whole ones')

  const refused = ['\u0000', 'a\u0007b', '\u001b[31m', '\u007f', 'a\u0085b', '\u009b', '\u202e', '\u202a', '\u2066', '\u2069', '\u200e', '\u200f', '\u061c', '\u200b', '\u2060', '\ufeff', '\u2028', '\u2029', '\u206f', '\ufffb', '\u180e']
  for (const name of refused) {
    const created = await app.inject({ method: 'POST', url: '/users', headers: auth(), payload: { email: 'c@example.com', name: `x${name}y` } })
    t.equal(created.statusCode, 400, `U+${name.codePointAt(0)?.toString(16).padStart(4, '0')} in a name`)
    t.same(paths(created.json()), ['/body/name'])
    const search = await app.inject({ url: `/users?q=${encodeURIComponent(`x${name}`)}`, headers: auth() })
    t.same(paths(search.json()), ['/querystring/q'], 'and in a search term')
  }
  const ascii = await app.inject({ url: `/users/${user.id}`, headers: auth({ 'if-none-match': '"\u0085"' }) })
  t.same(paths(ascii.json()), ['/headers/if-none-match'], 'entity tags are ASCII')
  for (const name of ['Zoë', 'علی\u200cرضا', '👩\u200d💻 Ann', '李小龍', 'O\'Brien-Smith', 'a'.repeat(100)]) {
    const res = await app.inject({ method: 'POST', url: '/users', headers: auth(), payload: { email: `ok-${name.length}-${name.codePointAt(0) as number}@example.com`, name } })
    t.equal(res.statusCode, 201, `${name.slice(0, 20)} is a name`)
  }
  const long = await app.inject({ method: 'POST', url: '/users', headers: auth(), payload: { email: 'long@example.com', name: 'a'.repeat(101) } })
  t.same(paths(long.json()), ['/body/name'])
  const { rows } = await app.pg.pool.query("SELECT count(*)::int AS n FROM users WHERE email IN ('s@example.com', 'c@example.com', 'long@example.com')")
  t.equal(rows[0].n, 0, 'nothing refused was stored')
  t.equal((await app.pg.pool.query("SELECT count(*)::int AS n FROM audit_events WHERE action = 'user.update'")).rows[0].n, 0, 'nor audited')
})

t.test('email addresses: RFC 5321 lengths, the same rule for every schema and the command line', async (t) => {
  const { app, auth } = await usersFixture(t)
  const local64 = `${'a'.repeat(64)}@example.com`
  const local65 = `${'a'.repeat(65)}@example.com`
  const label63 = `a@${'b'.repeat(63)}.example`
  const label64 = `a@${'b'.repeat(64)}.example`
  t.equal(isEmail(local64), true)
  t.equal(isEmail(local65), false)
  t.equal(isEmail(label63), true)
  t.equal(isEmail(label64), false, 'a DNS label is at most 63 octets')
  t.equal(isEmail(`a@${Array.from({ length: 64 }, () => 'bbb').join('.')}`), true, 'a domain of 255 octets')
  t.equal(isEmail(`a@${Array.from({ length: 64 }, () => 'bbb').join('.')}c`), false, 'not one more')
  t.equal(isEmail('@example.com'), false)
  t.equal(isEmail('a@localhost'), false, 'a host name of two labels at least')
  for (const [email, status] of [[local64, 201], [local65, 400], [label64, 400]] as const) {
    t.equal((await app.inject({ method: 'POST', url: '/users', headers: auth(), payload: { email } })).statusCode, status, `POST /users ${email.slice(0, 20)}… ${status}`)
    t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { email, name: `n${status}x`, password: 'a perfectly fine passphrase' } })).statusCode, status === 201 ? 201 : 400, 'registration alike')
  }
})

t.test('bodies are never coerced to the schema\'s types; query strings are', async (t) => {
  const { app, auth, admin } = await usersFixture(t)
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: [admin.email], password: [admin.password] } })
  t.equal(login.statusCode, 400, 'arrays are not strings')
  t.same(paths(login.json()), ['/body/email', '/body/password'])
  const typed = await app.inject({ method: 'POST', url: '/users', headers: auth(), payload: { email: 'typed@example.com', name: 123, active: 'false' } })
  t.equal(typed.statusCode, 400)
  t.same(paths(typed.json()), ['/body/active', '/body/name'])
  const huge = await app.inject({ method: 'POST', url: '/users', headers: auth({ 'content-type': 'application/json' }), payload: '{"email":"huge@example.com","active":1e400}' })
  t.same(paths(huge.json()), ['/body/active'], 'a JSON number beyond a double is no boolean either')
  t.equal((await app.pg.pool.query('SELECT count(*)::int AS n FROM users')).rows[0].n, 0)
  t.equal((await app.inject({ url: '/users?active=false&count=true&limit=5', headers: auth() })).statusCode, 200, 'query strings are text: coerced')
})

t.test('an access token whose claims are not Roster\'s is a 401, not a database error', async (t) => {
  const { app, session } = await usersFixture(t)
  const sign = createSigner({ key: app.auth.keys.privatePem, algorithm: 'EdDSA', kid: app.auth.keys.kid, header: { alg: 'EdDSA', typ: 'at+jwt' }, iss: app.auth.issuer, aud: app.auth.audience, expiresIn: 60_000 })
  for (const claims of [{ sub: session.adminId, sid: 'not-a-uuid' }, { sub: 'x', sid: session.sessionId }, { sub: session.adminId, sid: 42 }, { sub: 'x', client_id: 'x', scope: 'users:read' }]) {
    const res = await app.inject({ url: '/users', headers: { authorization: `Bearer ${sign({ ...claims, jti: 'j' })}` } })
    t.equal(res.statusCode, 401, JSON.stringify(claims))
    t.match(res.json(), { code: 'ROSTER_UNAUTHORIZED', detail: 'The access token names no session or API client Roster would issue' })
  }
  t.equal((await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${sign({ sub: session.adminId, sid: session.sessionId, jti: 'j' })}` } })).statusCode, 200, 'the same signer, with Roster\'s claims')
})

t.test('the compilers: numbers in any coerced part, whatever the schema\'s shape', async (t) => {
  const compile = buildValidator({}, { customOptions: { allErrors: true } })
  const schema = { type: 'object', properties: { ratio: { type: 'number' }, n: { anyOf: [{ type: 'integer' }, { type: 'null' }] }, s: { type: 'string' } } }
  const query = compile({ schema, httpPart: 'querystring' })
  const ok = { ratio: '-0.5e3', n: '42', s: '1e400' }
  t.equal(query(ok), true, 'plain decimals; a string stays a string')
  t.same(ok, { ratio: -500, n: 42, s: '1e400' }, 'converted')
  for (const [value, field] of [[{ ratio: '1e400' }, '/ratio'], [{ ratio: '.5' }, '/ratio'], [{ ratio: 'Infinity' }, '/ratio'], [{ n: '1.5' }, '/n'], [{ n: ['1', '0x1'] }, '/n']] as const) {
    t.equal(query({ ...value }), false, JSON.stringify(value))
    t.same(query.errors?.map((e) => e.instancePath), [field])
  }
  const body = compile({ schema, httpPart: 'body' })
  t.equal(body({ ratio: '1' }), false, 'bodies are not converted')
  t.equal(body({ s: 'x', nested: { deep: [Infinity] } }), false, 'not finite, however deep')
  t.same(body.errors?.map((e) => e.instancePath), ['/nested/deep/0'])
  t.equal(compile({ schema })({ ratio: 2 }), true, 'no part named: not converted, still checked')
  t.equal(compile({ schema: { type: 'string' }, httpPart: 'params' })('x'), true, 'a part that is no object')
})
