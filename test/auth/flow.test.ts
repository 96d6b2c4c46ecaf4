import t from 'tap'
import { build, waitForEmail } from '../helper.ts'

const PASSWORD = 'correct horse battery staple'

t.test('register → unconfirmed 403 → confirm → login → me → refresh → late reuse revokes → logout', async (t) => {
  const app = await build(t)

  // register
  const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'Ann@Example.com', name: 'ann', password: PASSWORD } })
  t.equal(reg.statusCode, 201, reg.body)
  const admin = reg.json()
  t.match(admin, { email: 'Ann@Example.com', name: 'ann', confirmed: false, pendingEmail: null })
  t.match(admin.id, /^[0-9a-f-]{36}$/)
  t.notOk('password' in admin || 'passwordHash' in admin, 'no password or hash in the answer')
  t.notMatch(reg.body, /argon2/)

  // the confirmation email, as the log transport sent it
  const email = await waitForEmail(app, 'Ann@Example.com')
  t.equal(email.subject, 'Confirm your Roster account')
  t.match(email.link, /^http:\/\/localhost:3000\/auth\/confirm\?token=[A-Za-z0-9_-]{43}$/)
  const { rows: tokens } = await app.pg.pool.query('SELECT token_hash, purpose, extract(epoch FROM expires_at - created_at)::int AS ttl FROM account_tokens')
  t.equal(tokens.length, 1)
  t.not(tokens[0].token_hash, email.token, 'only the hash is stored')
  t.equal(tokens[0].ttl, 24 * 3600, 'valid 24 h')

  // an unconfirmed account is told so only with the right password
  const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'ann@example.com', password: 'not the password at all' } })
  t.equal(wrong.statusCode, 401)
  const early = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'ann@example.com', password: PASSWORD } })
  t.equal(early.statusCode, 403)
  t.match(early.headers['content-type'], /application\/problem\+json/)
  t.equal(early.json().code, 'ROSTER_ACCOUNT_NOT_CONFIRMED')

  // the confirmation token is not an access token
  const asBearer = await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${email.token}` } })
  t.equal(asBearer.statusCode, 401)
  t.match(asBearer.headers['content-type'], /problem\+json/)

  // confirm (JSON client), single use
  const confirm = await app.inject({ url: `/auth/confirm?token=${email.token}` })
  t.equal(confirm.statusCode, 200)
  t.same(confirm.json(), { status: 'confirmed', purpose: 'account', email: 'Ann@Example.com' })
  const again = await app.inject({ url: `/auth/confirm?token=${email.token}` })
  t.equal(again.statusCode, 400)
  t.match(again.json(), { code: 'ROSTER_INVALID_TOKEN', detail: /resend/ })

  // login, case-insensitive email
  const login = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'user-agent': 'flow-test' }, payload: { email: 'ANN@example.COM', password: PASSWORD } })
  t.equal(login.statusCode, 200, login.body)
  t.equal(login.headers['cache-control'], 'no-store')
  const pair = login.json()
  t.same(Object.keys(pair).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type'])
  t.equal(pair.token_type, 'Bearer')
  t.equal(pair.expires_in, 900)
  t.match(pair.refresh_token, /^[A-Za-z0-9_-]{43}$/)
  const bearer = { authorization: `Bearer ${pair.access_token as string}` }

  // me
  const me = await app.inject({ url: '/auth/me', headers: bearer })
  t.equal(me.statusCode, 200)
  t.match(me.json(), { id: admin.id, email: 'Ann@Example.com', name: 'ann', confirmed: true })

  // refresh: a new pair; the old refresh token is used up
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: pair.refresh_token } })
  t.equal(refreshed.statusCode, 200, refreshed.body)
  const next = refreshed.json()
  t.not(next.refresh_token, pair.refresh_token)
  t.not(next.access_token, pair.access_token)
  const nextBearer = { authorization: `Bearer ${next.access_token as string}` }
  t.equal((await app.inject({ url: '/auth/me', headers: nextBearer })).statusCode, 200)

  // the old refresh token presented again, after REFRESH_REUSE_INTERVAL: the whole session is revoked
  await app.pg.pool.query("UPDATE refresh_tokens SET used_at = used_at - interval '11 seconds' WHERE used_at IS NOT NULL")
  const reused = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: pair.refresh_token } })
  t.equal(reused.statusCode, 401)
  t.equal(reused.json().code, 'ROSTER_INVALID_REFRESH_TOKEN')
  t.equal((await app.inject({ url: '/auth/me', headers: nextBearer })).statusCode, 401, 'the access token of the session is refused')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: next.refresh_token } })).statusCode, 401, 'and its newest refresh token too')
  const { rows: [revoked] } = await app.pg.pool.query('SELECT revoked_reason FROM sessions')
  t.equal(revoked.revoked_reason, 'refresh_token_reuse')
  t.match(app.logs.text(), /a used refresh token was presented again after REFRESH_REUSE_INTERVAL: session revoked/)

  // a new login, then logout: its token is refused
  const second = (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'ann@example.com', password: PASSWORD } })).json()
  const secondBearer = { authorization: `Bearer ${second.access_token as string}` }
  t.equal((await app.inject({ url: '/auth/me', headers: secondBearer })).statusCode, 200)
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: secondBearer })
  t.equal(logout.statusCode, 204)
  t.equal(logout.body, '')
  const after = await app.inject({ url: '/auth/me', headers: secondBearer })
  t.equal(after.statusCode, 401)
  t.match(after.json(), { code: 'ROSTER_UNAUTHORIZED', detail: /session .* has ended/ })
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: second.refresh_token } })).statusCode, 401, 'its refresh token is dead too')

  // the audit log holds the register and the confirm, without secrets
  const { rows: audit } = await app.pg.pool.query('SELECT actor_id, action, target_id, request_id, changes FROM audit_events ORDER BY created_at')
  t.same(audit.map((a) => a.action), ['admin.register', 'admin.confirm', 'admin.role_change'], 'the first admin to confirm becomes an owner')
  t.same(audit[2].changes, { role: 'owner', reason: 'first admin' })
  t.equal(audit[0].target_id, admin.id)
  t.equal(audit[0].request_id, reg.headers['x-request-id'])
  t.same(audit[0].changes, { email: 'Ann@Example.com', name: 'ann', role: 'viewer' })
  t.notMatch(JSON.stringify(audit), /horse|argon2/)

  // no secret in any log line (the log transport's own email line aside)
  const logs = app.logs.lines.filter((l) => l.email === undefined).map((l) => JSON.stringify(l)).join('\n')
  t.notOk(logs.includes(email.token), 'the confirmation token is not logged')
  t.notOk(logs.includes(pair.refresh_token), 'refresh tokens are not logged')
  t.notOk(logs.includes(PASSWORD), 'the password is not logged')
  t.match(logs, /"url":"\/auth\/confirm\?token=\[redacted\]"/, 'the confirmation URL is logged with its token redacted')
})

t.test('the confirmation link opened in a browser answers HTML, escaped', async (t) => {
  const app = await build(t)
  const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: "o'hara&co@example.com", name: 'bob', password: PASSWORD } })
  t.equal(reg.statusCode, 201, reg.body)
  const email = await waitForEmail(app, "o'hara&co@example.com")
  const html = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' }
  const page = await app.inject({ url: `/auth/confirm?token=${email.token}`, headers: html })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.headers['content-security-policy'], /default-src 'none'/)
  t.equal(page.headers['referrer-policy'], 'no-referrer')
  t.match(page.body, /Account confirmed/)
  t.match(page.body, /o&#39;hara&amp;co@example\.com/, 'the address is escaped')
  t.notMatch(page.body, /o'hara/)
  t.notMatch(page.body, /<script|style=/, 'no script, no inline style')

  const used = await app.inject({ url: `/auth/confirm?token=${email.token}`, headers: html })
  t.equal(used.statusCode, 400)
  t.match(used.headers['content-type'], /^text\/html/)
  t.match(used.body, /invalid, expired or already used/)
  const json = await app.inject({ url: '/auth/confirm?token=nope', headers: { accept: 'application/json, text/html' } })
  t.equal(json.statusCode, 400)
  t.match(json.headers['content-type'], /problem\+json/, 'JSON preferred when listed first')
  const missing = await app.inject({ url: '/auth/confirm' })
  t.equal(missing.statusCode, 400)
  t.same(missing.json().errors, [{ path: '/querystring/token', message: 'is required' }])
})

t.test('resend: 202 always; a new link only for an unconfirmed account, at most 5 an hour', async (t) => {
  const app = await build(t)
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'cy@example.com', name: 'cy', password: PASSWORD } }).then((r) => t.equal(r.statusCode, 400, 'name too short'))
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'cy@example.com', name: 'cyd', password: PASSWORD } })).statusCode, 201)
  const first = await waitForEmail(app, 'cy@example.com')

  for (const email of ['nobody@example.com', 'CY@example.com']) {
    const res = await app.inject({ method: 'POST', url: '/auth/confirm/resend', payload: { email } })
    t.equal(res.statusCode, 202)
    t.same(res.json(), { status: 'accepted', detail: 'If an unconfirmed account has this address, a new confirmation link is on its way.' })
  }
  const second = await waitForEmail(app, 'cy@example.com', 2)
  t.not(second.token, first.token)
  await app.admins.drain()

  // up to 5 links an hour: 3 more go out, then none
  for (let i = 0; i < 5; i++) await app.inject({ method: 'POST', url: '/auth/confirm/resend', payload: { email: 'cy@example.com' } })
  await app.admins.drain()
  const { rows: [{ n }] } = await app.pg.pool.query("SELECT count(*)::int AS n FROM account_tokens WHERE purpose = 'confirm_account'")
  t.equal(n, 5)
  t.match(app.logs.text(), /email not sent: hourly limit for this account reached/)

  // either link confirms
  t.equal((await app.inject({ url: `/auth/confirm?token=${first.token}` })).statusCode, 200)
  await app.inject({ method: 'POST', url: '/auth/confirm/resend', payload: { email: 'cy@example.com' } })
  await app.admins.drain()
  const { rows: [{ n: after }] } = await app.pg.pool.query("SELECT count(*)::int AS n FROM account_tokens WHERE purpose = 'confirm_account'")
  t.equal(after, 5, 'a confirmed account gets no more links')
  const { rows: outbox } = await app.pg.pool.query('SELECT recipient FROM email_outbox')
  t.equal(outbox.length, 5)
  t.notOk(outbox.some((r) => r.recipient === 'nobody@example.com'), 'nothing for an unknown address')
})

t.test('JWKS lists the verifying keys', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/.well-known/jwks.json' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'public, max-age=300')
  t.same(res.json(), { keys: app.auth.keys.verifying.map((k) => k.jwk) })
  t.match(res.json().keys[0], { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: app.auth.keys.kid })
})
