import t from 'tap'
import { build, createAdmin, loginAs, waitForEmail } from '../helper.ts'

const NEW = 'my new passphrase is long'
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

t.test('forgot → reset: 202 always, single-use 1 h link, every session ends', async (t) => {
  const app = await build(t, { env: { LOCKOUT_THRESHOLD: '2' } })
  const ann = await createAdmin(app, { email: 'ann@example.com', name: 'ann' })
  const s1 = await loginAs(app, ann)
  const s2 = await loginAs(app, ann)

  for (const email of ['nobody@example.com', 'ANN@example.com']) {
    const res = await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })
    t.equal(res.statusCode, 202)
    t.same(res.json(), { status: 'accepted', detail: 'If an account has this address, a password reset link is on its way.' })
  }
  const email = await waitForEmail(app, 'ann@example.com')
  t.equal(email.subject, 'Reset your Roster password')
  t.match(email.link, /\/auth\/password\/reset\?token=[A-Za-z0-9_-]{43}$/)
  await app.admins.drain()
  const { rows: tokens } = await app.pg.pool.query("SELECT extract(epoch FROM expires_at - created_at)::int AS ttl FROM account_tokens WHERE purpose = 'reset_password'")
  t.same(tokens, [{ ttl: 3600 }], 'one token, valid 1 h; none for the unknown address')

  // the reset token is neither an access token nor a confirmation
  t.equal((await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${email.token}` } })).statusCode, 401)
  t.equal((await app.inject({ url: `/auth/confirm?token=${email.token}` })).statusCode, 400)

  // lock the account first: a reset unlocks it
  for (let i = 0; i < 2; i++) await app.inject({ method: 'POST', url: '/auth/login', payload: { email: ann.email, password: `wrong guess ${i}` } })
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: ann.email, password: ann.password } })).statusCode, 429)

  const weak = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: email.token, password: 'ann@example.com' } })
  t.equal(weak.statusCode, 400)
  t.match(weak.json(), { errors: [{ path: '/body/password', message: /email/ }] })
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: email.token, password: 'short' } })).statusCode, 400)

  const reset = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: email.token, password: NEW } })
  t.equal(reset.statusCode, 204, reset.body)
  for (const s of [s1, s2]) t.equal((await app.inject({ url: '/auth/me', headers: s.headers })).statusCode, 401, 'every session has ended')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: ann.email, password: ann.password } })).statusCode, 401, 'old password gone, lock lifted')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: ann.email, password: NEW } })).statusCode, 200)

  const again = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: email.token, password: 'yet another passphrase' } })
  t.equal(again.statusCode, 400, 'single use')
  t.match(again.json(), { code: 'ROSTER_INVALID_TOKEN', detail: /forgot/ })
  const { rows: audit } = await app.pg.pool.query('SELECT action, actor_id, changes FROM audit_events')
  t.same(audit, [{ action: 'admin.password_reset', actor_id: null, changes: { password: '[changed]' } }])
  const logs = app.logs.lines.filter((l) => l.email === undefined).map((l) => JSON.stringify(l)).join('\n')
  t.notOk(logs.includes(email.token), 'the reset token is never logged')
  t.notOk(logs.includes(NEW), 'nor the password')
})

t.test('older links die with a reset, and expired links are refused', async (t) => {
  const app = await build(t)
  const ann = await createAdmin(app, { email: 'ann@example.com', name: 'ann' })
  app.admins.forgotPassword(ann.email)
  await app.admins.drain()
  app.admins.forgotPassword(ann.email)
  const first = await waitForEmail(app, ann.email)
  const second = await waitForEmail(app, ann.email, 2)
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: second.token, password: NEW } })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: first.token, password: 'another passphrase here' } })).statusCode, 400, 'the other link is void')

  app.admins.forgotPassword(ann.email)
  const third = await waitForEmail(app, ann.email, 3)
  await app.pg.pool.query("UPDATE account_tokens SET expires_at = now() - interval '1 second'")
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: third.token, password: 'another passphrase here' } })).statusCode, 400, 'expired')
})

t.test('the reset page: a form without script that posts urlencoded', async (t) => {
  const app = await build(t)
  const ann = await createAdmin(app, { email: 'ann@example.com', name: 'ann' })
  app.admins.forgotPassword(ann.email)
  const { token, link } = await waitForEmail(app, ann.email)

  const page = await app.inject({ url: new URL(link).pathname + new URL(link).search, headers: { accept: 'text/html' } })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.headers['content-security-policy'], /default-src 'none'; form-action 'self'/)
  t.equal(page.headers['referrer-policy'], 'no-referrer')
  t.equal(page.headers['cache-control'], 'no-store')
  t.match(page.body, /<form method="post" action="reset">/)
  t.match(page.body, `<input type="hidden" name="token" value="${token}">`)
  t.match(page.body, /type="password" id="password" name="password" required minlength="12" maxlength="128"/)
  t.notMatch(page.body, /<script|style=|<style/)
  t.match(app.logs.text(), /"url":"\/auth\/password\/reset\?token=\[redacted\]"/)
  t.notOk(app.logs.lines.filter((l) => l.email === undefined).some((l) => JSON.stringify(l).includes(token)))

  const hostile = await app.inject({ url: '/auth/password/reset?token=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E' })
  t.notMatch(hostile.body, /<script>/, 'the token is escaped into the page')
  t.match(hostile.body, /value="&quot;&gt;&lt;script&gt;/)

  const post = (payload: string, headers: Record<string, string> = FORM) => app.inject({ method: 'POST', url: '/auth/password/reset', headers, payload })
  const tooShort = await post(new URLSearchParams({ token, password: 'short' }).toString())
  t.equal(tooShort.statusCode, 400)
  t.match(tooShort.headers['content-type'], /^text\/html/)
  t.match(tooShort.body, /role="alert"><strong>The password must NOT have fewer than 12 characters/)
  t.match(tooShort.body, `value="${token}"`, 'the form again, with its token')
  const common = await post(new URLSearchParams({ token, password: 'password1234' }).toString())
  t.equal(common.statusCode, 400)
  t.match(common.body, /The password is too common/)
  t.match(common.body, `value="${token}"`)
  const noToken = await post(new URLSearchParams({ password: NEW }).toString())
  t.equal(noToken.statusCode, 400)
  t.match(noToken.body, /The form was incomplete/)
  const badToken = await post(new URLSearchParams({ token: 'nope', password: NEW }).toString())
  t.equal(badToken.statusCode, 400)
  t.match(badToken.headers['content-type'], /^text\/html/)
  t.match(badToken.body, /invalid, expired or already used/)

  const done = await post(new URLSearchParams({ token, password: NEW }).toString())
  t.equal(done.statusCode, 200)
  t.match(done.headers['content-type'], /^text\/html/)
  t.match(done.body, /Password changed/)
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: ann.email, password: NEW } })).statusCode, 200)

  // JSON clients keep problem+json; a JSON body from a browser gets HTML
  const json = await post(JSON.stringify({ token, password: NEW }), { 'content-type': 'application/json' })
  t.equal(json.statusCode, 400)
  t.match(json.headers['content-type'], /problem\+json/)
  const browser = await post(JSON.stringify({ token, password: NEW }), { 'content-type': 'application/json', accept: 'text/html' })
  t.match(browser.headers['content-type'], /^text\/html/)
  const invalidJson = await post(JSON.stringify({ token }), { 'content-type': 'application/json' })
  t.same(invalidJson.json().errors, [{ path: '/body/password', message: 'is required' }])
  t.equal((await post('password=x', { 'content-type': 'text/plain' })).statusCode, 415, 'a text body is not taken')
})
