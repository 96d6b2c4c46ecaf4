import t from 'tap'
import { build, createAdmin, loginAs, waitForEmail, type TestApp } from '../helper.ts'

async function login (app: TestApp, email: string, password: string) {
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })
  if (res.statusCode !== 200) return { status: res.statusCode, headers: { authorization: '' } }
  return { status: 200, headers: { authorization: `Bearer ${res.json().access_token as string}` } }
}

const audit = async (app: TestApp) => (await app.pg.pool.query('SELECT action, actor_id, changes FROM audit_events ORDER BY created_at')).rows

t.test('GET and PATCH /auth/me: name', async (t) => {
  const app = await build(t)
  const ann = await createAdmin(app, { name: 'ann' })
  await createAdmin(app, { name: 'Bob' })
  const s = await loginAs(app, ann)

  const me = await app.inject({ url: '/auth/me', headers: s.headers })
  t.equal(me.statusCode, 200)
  t.same(Object.keys(me.json()).sort(), ['confirmed', 'createdAt', 'email', 'id', 'mfa', 'name', 'pendingEmail', 'role', 'updatedAt'])
  t.notMatch(me.body, /argon2/, 'the hash never leaves')

  const renamed = await app.inject({ method: 'PATCH', url: '/auth/me', headers: s.headers, payload: { name: 'ann.b' } })
  t.equal(renamed.statusCode, 200)
  t.match(renamed.json(), { name: 'ann.b', email: ann.email })
  t.ok(renamed.json().updatedAt > me.json().updatedAt, 'updatedAt moves')

  const taken = await app.inject({ method: 'PATCH', url: '/auth/me', headers: s.headers, payload: { name: 'BOB' } })
  t.equal(taken.statusCode, 409)
  t.match(taken.json(), { code: 'ROSTER_NAME_TAKEN', detail: /^name: / })
  t.equal((await app.inject({ method: 'PATCH', url: '/auth/me', headers: s.headers, payload: { name: 'no spaces allowed' } })).statusCode, 400)
  const nothing = await app.inject({ method: 'PATCH', url: '/auth/me', headers: s.headers, payload: {} })
  t.equal(nothing.statusCode, 400)
  t.equal(nothing.json().code, 'ROSTER_NOTHING_TO_CHANGE')
  t.equal((await app.inject({ method: 'PATCH', url: '/auth/me', headers: s.headers, payload: { currentPassword: 'x' } })).statusCode, 400)
  t.equal((await app.inject({ method: 'PATCH', url: '/auth/me', headers: s.headers, payload: { name: 'ann.b', role: 'root' } })).statusCode, 400, 'unknown fields refused')

  // the legacy PUT is the same
  const put = await app.inject({ method: 'PUT', url: '/auth/me', headers: s.headers, payload: { name: 'ann.c' } })
  t.equal(put.statusCode, 200)
  t.equal(put.json().name, 'ann.c')
  const same = await app.inject({ method: 'PATCH', url: '/auth/me', headers: s.headers, payload: { name: 'ann.c' } })
  t.equal(same.statusCode, 200, 'no change is fine')
  t.same((await audit(app)).map((a) => [a.action, a.changes]), [['admin.update', { name: 'ann.b' }], ['admin.update', { name: 'ann.c' }]])
})

t.test('a new email takes effect only once confirmed, and needs currentPassword', async (t) => {
  const app = await build(t, { env: { ADMIN_EMAIL_DOMAINS: 'example.com, Example.org' } })
  const ann = await createAdmin(app, { email: 'ann@example.com', name: 'ann' })
  await createAdmin(app, { email: 'bob@example.com', name: 'bob' })
  const s = await loginAs(app, ann)
  const patch = (payload: object) => app.inject({ method: 'PATCH', url: '/auth/me', headers: s.headers, payload })

  const missing = await patch({ email: 'ann@example.org' })
  t.equal(missing.statusCode, 400)
  t.same(missing.json().errors, [{ path: '/body/currentPassword', message: 'is required to change the email' }])
  const wrong = await patch({ email: 'ann@example.org', currentPassword: 'not my password' })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'ROSTER_WRONG_PASSWORD')
  t.equal((await app.pg.pool.query("SELECT failures FROM login_throttle WHERE email = 'ann@example.com'")).rows[0]?.failures, 1, 'a wrong currentPassword counts towards the lockout')
  t.equal((await patch({ email: 'BOB@example.com', currentPassword: ann.password })).statusCode, 409, 'another admin\'s address')
  const outside = await patch({ email: 'ann@elsewhere.net', currentPassword: ann.password })
  t.equal(outside.statusCode, 403)
  t.match(outside.json(), { code: 'ROSTER_EMAIL_DOMAIN_NOT_ALLOWED', detail: /example\.com, Example\.org/ })

  const first = await patch({ email: 'ann@example.org', currentPassword: ann.password })
  t.equal(first.statusCode, 200)
  t.match(first.json(), { email: 'ann@example.com', pendingEmail: 'ann@example.org' })
  t.same((await app.pg.pool.query("SELECT failures FROM login_throttle WHERE email = 'ann@example.com'")).rows, [], 'the right password clears the count')
  const firstLink = await waitForEmail(app, 'ann@example.org')
  t.equal(firstLink.subject, 'Confirm your new email address')

  // asking again voids the first link
  t.equal((await patch({ email: 'Ann@Example.org', currentPassword: ann.password })).statusCode, 200)
  const secondLink = await waitForEmail(app, 'Ann@Example.org')
  t.equal((await app.inject({ url: `/auth/confirm?token=${firstLink.token}` })).statusCode, 400, 'the first link is void')

  t.equal((await login(app, 'ann@example.com', ann.password)).status, 200, 'the old address is still the login')
  t.equal((await login(app, 'ann@example.org', ann.password)).status, 401)

  const confirmed = await app.inject({ url: `/auth/confirm?token=${secondLink.token}`, headers: { accept: 'text/html' } })
  t.equal(confirmed.statusCode, 200)
  t.match(confirmed.body, /Email address confirmed[\s\S]*<strong>Ann@Example\.org<\/strong> is now the email address/)
  t.match((await app.inject({ url: '/auth/me', headers: s.headers })).json(), { email: 'Ann@Example.org', pendingEmail: null })
  t.equal((await login(app, 'ann@example.org', ann.password)).status, 200)
  t.equal((await login(app, 'ann@example.com', ann.password)).status, 401)
  t.same((await audit(app)).map((a) => [a.action, a.changes]), [
    ['admin.email_change', { pendingEmail: 'ann@example.org' }],
    ['admin.email_change', { pendingEmail: 'Ann@Example.org' }],
    ['admin.email_change', { email: 'Ann@Example.org' }]
  ])

  // giving the current address back cancels a pending change
  t.equal((await patch({ email: 'ann@example.net', currentPassword: ann.password })).statusCode, 403)
  t.equal((await patch({ email: 'ann@example.com', currentPassword: ann.password })).statusCode, 200)
  const thirdLink = await waitForEmail(app, 'ann@example.com')
  const cancelled = await patch({ email: 'ANN@example.org' })
  t.equal(cancelled.statusCode, 200, 'no password needed to keep the current address')
  t.match(cancelled.json(), { email: 'Ann@Example.org', pendingEmail: null })
  t.equal((await app.inject({ url: `/auth/confirm?token=${thirdLink.token}` })).statusCode, 400, 'its link is void')

  t.equal((await patch({ email: 'ann@example.com', currentPassword: ann.password })).statusCode, 200)
  const fourthLink = await waitForEmail(app, 'ann@example.com', 2)
  const json = await app.inject({ url: `/auth/confirm?token=${fourthLink.token}` })
  t.same(json.json(), { status: 'confirmed', purpose: 'email', email: 'ann@example.com' })
})

t.test('a pending address taken meanwhile cannot be confirmed', async (t) => {
  const app = await build(t)
  const ann = await createAdmin(app, { email: 'ann@example.com', name: 'ann' })
  const s = await loginAs(app, ann)
  t.equal((await app.inject({ method: 'PATCH', url: '/auth/me', headers: s.headers, payload: { email: 'new@example.com', currentPassword: ann.password } })).statusCode, 200)
  const link = await waitForEmail(app, 'new@example.com')
  await createAdmin(app, { email: 'NEW@example.com', name: 'quick' })
  const json = await app.inject({ url: `/auth/confirm?token=${link.token}` })
  t.equal(json.statusCode, 409)
  t.equal(json.json().code, 'ROSTER_EMAIL_TAKEN')
  const html = await app.inject({ url: `/auth/confirm?token=${link.token}`, headers: { accept: 'text/html' } })
  t.equal(html.statusCode, 409, 'the failed attempt did not use the link up')
  t.match(html.headers['content-type'], /^text\/html/)
  t.match(html.body, /already exists/)
})

t.test('a password change needs currentPassword, follows the policy and ends the other sessions', async (t) => {
  const app = await build(t, { env: { LOCKOUT_THRESHOLD: '3' } })
  const ann = await createAdmin(app, { email: 'ann@example.com', name: 'annabel.smith' })
  const mine = await loginAs(app, ann)
  const other = await loginAs(app, ann)
  const patch = (payload: object) => app.inject({ method: 'PATCH', url: '/auth/me', headers: mine.headers, payload })
  const NEW = 'a brand new passphrase'

  t.same((await patch({ password: NEW })).json().errors, [{ path: '/body/currentPassword', message: 'is required to change the password' }])
  const refused = [['password1234', /too common/], ['QAZwsxedcrfv', /too common/], ['ANN@EXAMPLE.COM', /email/], ['Annabel.Smith', /name/]] as const
  for (const [password, message] of refused) {
    const res = await patch({ password, currentPassword: ann.password })
    t.equal(res.statusCode, 400, password)
    t.match(res.json(), { code: 'ROSTER_VALIDATION_FAILED', errors: [{ path: '/body/password', message }] }, password)
  }
  t.equal((await patch({ password: 'short', currentPassword: ann.password })).statusCode, 400)
  const sameAsNewEmail = await patch({ email: 'annabel.smith@example.org', password: 'Annabel.Smith@example.org', currentPassword: ann.password })
  t.match(sameAsNewEmail.json(), { errors: [{ path: '/body/password', message: /email/ }] }, 'nor the new email of the same request')
  t.equal((await app.pg.pool.query('SELECT pending_email FROM admins WHERE id = $1', [ann.id])).rows[0].pending_email, null, 'and that request changed nothing')

  const changed = await patch({ password: NEW, currentPassword: ann.password })
  t.equal(changed.statusCode, 200)
  t.equal((await app.inject({ url: '/auth/me', headers: mine.headers })).statusCode, 200, 'this session goes on')
  t.equal((await app.inject({ url: '/auth/me', headers: other.headers })).statusCode, 401, 'the other session has ended')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: other.refreshToken } })).statusCode, 401)
  t.equal((await login(app, ann.email, ann.password)).status, 401, 'the old password is gone')
  t.equal((await login(app, ann.email, NEW)).status, 200)
  const events = await audit(app)
  t.same(events.map((a) => [a.action, a.actor_id, a.changes]), [['admin.password_change', ann.id, { password: '[changed]' }]])
  t.notMatch(JSON.stringify(events), /brand new/)

  // wrong guesses of currentPassword lock like logins do
  for (let i = 0; i < 3; i++) t.equal((await patch({ password: 'another new passphrase', currentPassword: `guess ${i}` })).statusCode, 401)
  const locked = await patch({ password: 'another new passphrase', currentPassword: NEW })
  t.equal(locked.statusCode, 429)
  t.equal(locked.json().code, 'ROSTER_LOGIN_LOCKED')
  t.ok(Number(locked.headers['retry-after']) > 0)
  t.equal((await login(app, ann.email, NEW)).status, 429, 'and so is the login')
})

t.test('DELETE /auth/me deletes for real; the users it created stay', async (t) => {
  const app = await build(t)
  const ann = await createAdmin(app)
  const bob = await createAdmin(app)
  const s1 = await loginAs(app, ann)
  const s2 = await loginAs(app, ann)
  const bobs = await loginAs(app, bob)
  await app.pg.pool.query("INSERT INTO users (email, name, created_by) VALUES ('u1@example.com', 'U1', $1), ('u2@example.com', 'U2', $2)", [ann.id, bob.id])

  t.equal((await app.inject({ method: 'DELETE', url: '/auth/me', headers: s1.headers })).statusCode, 400, 'currentPassword is required')
  const wrong = await app.inject({ method: 'DELETE', url: '/auth/me', headers: s1.headers, payload: { currentPassword: 'not the password' } })
  t.equal(wrong.statusCode, 401)
  t.equal((await app.pg.pool.query('SELECT count(*)::int AS n FROM admins WHERE id = $1', [ann.id])).rows[0].n, 1, 'nothing deleted')
  t.equal((await app.inject({ url: '/auth/me', headers: s1.headers })).statusCode, 200)

  const res = await app.inject({ method: 'DELETE', url: '/auth/me', headers: s1.headers, payload: { currentPassword: ann.password } })
  t.equal(res.statusCode, 204)
  t.equal((await app.pg.pool.query('SELECT count(*)::int AS n FROM admins WHERE id = $1', [ann.id])).rows[0].n, 0, 'the admin is gone')
  t.same((await app.pg.pool.query('SELECT email, created_by FROM users ORDER BY email')).rows, [
    { email: 'u1@example.com', created_by: null },
    { email: 'u2@example.com', created_by: bob.id }
  ])
  for (const s of [s1, s2]) {
    const after = await app.inject({ url: '/auth/me', headers: s.headers })
    t.equal(after.statusCode, 401, 'a deleted admin\'s tokens are refused')
    t.match(after.headers['content-type'], /problem\+json/)
    t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: s.refreshToken } })).statusCode, 401)
  }
  t.equal((await login(app, ann.email, ann.password)).status, 401)
  t.equal((await app.inject({ url: '/auth/me', headers: bobs.headers })).statusCode, 200, 'other admins are untouched')
  t.match(await audit(app), [{ action: 'admin.delete', actor_id: ann.id, changes: { email: ann.email, name: ann.name } }])
})
