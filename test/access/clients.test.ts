import t from 'tap'
import { build, createAdmin, loginAs } from '../helper.ts'
import { clientToken, createClient } from './helpers.ts'

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const form = (fields: Record<string, string>): string => new URLSearchParams(fields).toString()
const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`

t.test('an API client gets a scoped EdDSA token with client credentials (RFC 6749 §4.4)', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000', SESSION_CACHE_TTL: '0' } })
  const owner = await loginAs(app, await createAdmin(app))
  const created = await app.inject({ method: 'POST', url: '/auth/clients', headers: owner.headers, payload: { name: 'HR sync', scopes: ['users:read', 'users:write'] } })
  t.equal(created.statusCode, 201)
  const client = created.json()
  t.match(client, { id: client.client_id, name: 'HR sync', scopes: ['users:read', 'users:write'], createdBy: owner.adminId, client_secret: /^[\w-]{43}$/, secrets: [{ lastUsedAt: null }] })
  const { rows: [stored] } = await app.pg.pool.query('SELECT secret_hash FROM api_client_secrets')
  t.not(stored.secret_hash, client.client_secret, 'the secret is stored hashed')

  // HTTP Basic
  const res = await app.inject({ method: 'POST', url: '/auth/token', headers: { ...FORM, authorization: basic(client.client_id, client.client_secret) }, payload: form({ grant_type: 'client_credentials' }) })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.same(Object.keys(res.json()).sort(), ['access_token', 'expires_in', 'scope', 'token_type'])
  t.match(res.json(), { token_type: 'Bearer', expires_in: 900, scope: 'users:read users:write' })
  const [h, p] = (res.json().access_token as string).split('.') as [string, string]
  t.match(JSON.parse(Buffer.from(h, 'base64url').toString()), { alg: 'EdDSA', typ: 'at+jwt' })
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString())
  t.match(claims, { sub: client.client_id, client_id: client.client_id, scope: 'users:read users:write', aud: 'roster' })
  t.equal(claims.sid, undefined, 'no session: a client\'s token, not an admin\'s')
  const bearer = { authorization: `Bearer ${res.json().access_token}` }

  // It manages users; its actions are audited as the client's.
  const user = await app.inject({ method: 'POST', url: '/users', headers: bearer, payload: { email: 'bob@example.com' } })
  t.equal(user.statusCode, 201)
  t.equal(user.json().createdBy, null, 'createdBy names admins only')
  const events = await app.inject({ url: `/audit-events?targetId=${user.json().id}`, headers: owner.headers })
  t.match(events.json(), [{ action: 'user.create', actorType: 'client', actorId: client.client_id }])
  t.equal((await app.inject({ url: '/audit-events?actorType=client', headers: owner.headers })).json().length, 1)
  t.equal((await app.inject({ url: '/audit-events', headers: bearer })).statusCode, 403, 'no audit:read scope')
  t.equal((await app.inject({ url: '/auth/me', headers: bearer })).statusCode, 403, 'a client has no account')
  const idem = { ...bearer, 'idempotency-key': 'k1' }
  t.equal((await app.inject({ method: 'POST', url: '/users', headers: idem, payload: { email: 'carl@example.com' } })).statusCode, 201, 'idempotency keys are scoped to the client')

  // Form fields, and a narrower scope.
  const narrow = await app.inject({ method: 'POST', url: '/auth/token', headers: FORM, payload: form({ grant_type: 'client_credentials', scope: 'users:read', client_id: client.client_id, client_secret: client.client_secret }) })
  t.equal(narrow.statusCode, 200)
  t.equal(narrow.json().scope, 'users:read')
  const readOnly = { authorization: `Bearer ${narrow.json().access_token}` }
  t.equal((await app.inject({ url: '/users', headers: readOnly })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/users', headers: readOnly, payload: { email: 'x@example.com' } })).statusCode, 403, 'the token has only the scope it asked for')

  const listed = await app.inject({ url: '/auth/clients', headers: owner.headers })
  t.equal(listed.statusCode, 200)
  t.notMatch(listed.body, client.client_secret)
  t.match(listed.json(), [{ id: client.client_id, secrets: [{ lastUsedAt: /^\d{4}-/ }] }], 'the secret\'s last use is recorded')

  // Deleting the client refuses its tokens (at once here: SESSION_CACHE_TTL=0).
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/clients/${client.client_id}`, headers: owner.headers })).statusCode, 204)
  const after = await app.inject({ url: '/users', headers: bearer })
  t.equal(after.statusCode, 401)
  t.match(after.json().detail, /API client .* no longer exists/)
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/clients/${client.client_id}`, headers: owner.headers })).statusCode, 404)
  const gone = await app.inject({ method: 'POST', url: '/auth/token', headers: { ...FORM, authorization: basic(client.client_id, client.client_secret) }, payload: form({ grant_type: 'client_credentials' }) })
  t.equal(gone.statusCode, 401)
  t.equal(gone.json().error, 'invalid_client')
})

t.test('token errors follow RFC 6749 §5.2', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000' } })
  const owner = await loginAs(app, await createAdmin(app))
  const client = await createClient(app, owner, ['users:read'])
  const token = async (headers: Record<string, string>, payload: string) => await app.inject({ method: 'POST', url: '/auth/token', headers: { ...FORM, ...headers }, payload })
  const cases: Array<[string, Record<string, string>, string, number, string]> = [
    ['wrong secret', { authorization: basic(client.id, 'nope') }, form({ grant_type: 'client_credentials' }), 401, 'invalid_client'],
    ['unknown client', { authorization: basic('not-a-uuid', client.secret) }, form({ grant_type: 'client_credentials' }), 401, 'invalid_client'],
    ['no credentials', {}, form({ grant_type: 'client_credentials' }), 401, 'invalid_client'],
    ['not Basic', { authorization: 'Bearer x.y.z' }, form({ grant_type: 'client_credentials' }), 401, 'invalid_client'],
    ['bad Basic encoding', { authorization: `Basic ${Buffer.from('%E0%A4%A:x').toString('base64')}` }, form({ grant_type: 'client_credentials' }), 401, 'invalid_client'],
    ['both methods', { authorization: basic(client.id, client.secret) }, form({ grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret }), 400, 'invalid_request'],
    ['half the fields', {}, form({ grant_type: 'client_credentials', client_id: client.id }), 400, 'invalid_request'],
    ['another grant', { authorization: basic(client.id, client.secret) }, form({ grant_type: 'password' }), 400, 'unsupported_grant_type'],
    ['no grant_type', { authorization: basic(client.id, client.secret) }, form({}), 400, 'invalid_request'],
    ['a scope not granted', { authorization: basic(client.id, client.secret) }, form({ grant_type: 'client_credentials', scope: 'users:read users:write' }), 400, 'invalid_scope'],
    ['an empty scope', { authorization: basic(client.id, client.secret) }, form({ grant_type: 'client_credentials', scope: ' ' }), 400, 'invalid_scope']
  ]
  for (const [what, headers, payload, status, error] of cases) {
    const res = await token(headers, payload)
    t.equal(res.statusCode, status, what)
    t.match(res.headers['content-type'], /^application\/json/, `${what}: application/json, not problem+json`)
    t.same(Object.keys(res.json()).sort(), ['error', 'error_description'], what)
    t.equal(res.json().error, error, what)
    if (status === 401) t.match(res.headers['www-authenticate'], /^Basic realm="roster"/, `${what}: WWW-Authenticate`)
  }
  const ignored = await token({ authorization: basic(client.id, client.secret) }, form({ grant_type: 'client_credentials', unknown: 'ignored, as the RFC says' }))
  t.equal(ignored.statusCode, 200, 'unknown parameters are ignored')
  const json = await app.inject({ method: 'POST', url: '/auth/token', headers: { authorization: basic(client.id, client.secret) }, payload: { grant_type: 'client_credentials' } })
  t.equal(json.statusCode, 415, 'JSON is not the RFC\'s encoding')
  t.equal(json.json().code, 'ROSTER_UNSUPPORTED_MEDIA_TYPE')
})

t.test('secrets rotate: two at most, each with its times; the owner manages, step-up applies', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000' } })
  const owner = await loginAs(app, await createAdmin(app))
  const client = await createClient(app, owner, ['audit:read'])
  const second = await app.inject({ method: 'POST', url: `/auth/clients/${client.id}/secrets`, headers: owner.headers })
  t.equal(second.statusCode, 201)
  t.match(second.json(), { id: /^[0-9a-f-]{36}$/, client_secret: /^[\w-]{43}$/, lastUsedAt: null })
  const third = await app.inject({ method: 'POST', url: `/auth/clients/${client.id}/secrets`, headers: owner.headers })
  t.equal(third.statusCode, 409)
  t.equal(third.json().code, 'ROSTER_TOO_MANY_SECRETS')
  t.ok(await clientToken(app, client), 'the old secret still works')
  t.ok(await clientToken(app, { id: client.id, secret: second.json().client_secret }), 'and the new one')
  const listed = (await app.inject({ url: '/auth/clients', headers: owner.headers })).json()[0]
  const old = listed.secrets.find((s: { id: string }) => s.id !== second.json().id)
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/clients/${client.id}/secrets/${old.id}`, headers: owner.headers })).statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/clients/${client.id}/secrets/${old.id}`, headers: owner.headers })).statusCode, 404)
  await t.rejects(clientToken(app, client), /401/, 'the deleted secret gets no token')
  t.equal((await app.inject({ method: 'POST', url: '/auth/clients/00000000-0000-4000-8000-000000000000/secrets', headers: owner.headers })).statusCode, 404)
  const { rows } = await app.pg.pool.query("SELECT action, actor_type FROM audit_events WHERE target_type = 'client' ORDER BY created_at")
  t.same(rows.map((r) => r.action), ['client.create', 'client.secret_create', 'client.secret_delete'])
  t.ok(rows.every((r) => r.actor_type === 'admin'))
})
