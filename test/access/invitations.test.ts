import t from 'tap'
import { build, createAdmin, loginAs, waitForEmail } from '../helper.ts'

const PASSWORD = 'correct horse battery staple'
const FORM = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }

t.test('invite → email → accept: a confirmed admin with the invited role; single use', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000', REGISTRATION: 'invite' } })
  const owner = await loginAs(app, await createAdmin(app))
  const invited = await app.inject({ method: 'POST', url: '/auth/invitations', headers: owner.headers, payload: { email: 'Dee@example.com', role: 'admin' } })
  t.equal(invited.statusCode, 201)
  t.match(invited.json(), { email: 'Dee@example.com', role: 'admin', invitedBy: owner.adminId })
  t.equal(Date.parse(invited.json().expiresAt) - Date.parse(invited.json().createdAt), 72 * 3600 * 1000, 'valid 72 h')
  const email = await waitForEmail(app, 'Dee@example.com')
  t.equal(email.subject, 'You are invited to Roster')
  t.match(email.link, /\/auth\/invitations\/accept\?token=[\w-]{43}$/)
  const { rows: [row] } = await app.pg.pool.query('SELECT token_hash FROM invitations')
  t.not(row.token_hash, email.token, 'the token is stored hashed')
  t.same((await app.inject({ url: '/auth/invitations', headers: owner.headers })).json().map((i: { email: string }) => i.email), ['Dee@example.com'])

  const page = await app.inject({ url: `/auth/invitations/accept?token=${email.token}` })
  t.equal(page.statusCode, 200)
  t.match(page.body, /<form method="post" action="accept">/)
  t.match(page.headers['content-security-policy'], /default-src 'none'/)

  const invalid = await app.inject({ method: 'POST', url: '/auth/invitations/accept', payload: { token: email.token, name: 'd' } })
  t.equal(invalid.statusCode, 400)
  t.match(invalid.json(), { code: 'ROSTER_VALIDATION_FAILED' })
  const weak = await app.inject({ method: 'POST', url: '/auth/invitations/accept', payload: { token: email.token, name: 'dee', password: 'password1234' } })
  t.equal(weak.statusCode, 400, 'a common password is refused, the link stays usable')
  const accepted = await app.inject({ method: 'POST', url: '/auth/invitations/accept', payload: { token: email.token, name: 'dee', password: PASSWORD } })
  t.equal(accepted.statusCode, 201)
  t.match(accepted.json(), { email: 'Dee@example.com', name: 'dee', role: 'admin', confirmed: true })
  t.equal((await app.inject({ method: 'POST', url: '/auth/invitations/accept', payload: { token: email.token, name: 'dee2', password: PASSWORD } })).statusCode, 400, 'single use')
  const dee = await loginAs(app, { email: 'dee@example.com', password: PASSWORD })
  t.equal((await app.inject({ url: '/auth/me', headers: dee.headers })).json().role, 'admin')
  t.same((await app.inject({ url: '/auth/invitations', headers: owner.headers })).json(), [], 'no longer pending')
  t.equal((await app.inject({ method: 'POST', url: '/auth/invitations', headers: owner.headers, payload: { email: 'dee@example.com', role: 'viewer' } })).statusCode, 409, 'an admin has that address already')
  const { rows: events } = await app.pg.pool.query("SELECT action FROM audit_events WHERE action LIKE 'invitation.%' OR action = 'admin.register' ORDER BY created_at")
  t.same(events.map((e) => e.action), ['invitation.create', 'admin.register', 'invitation.accept'])
})

t.test('the page\'s form, revocation, expiry, a newer invitation, REGISTRATION=closed', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000' } })
  const owner = await loginAs(app, await createAdmin(app))
  const invite = async (address: string): Promise<{ id: string, token: string }> => {
    const res = await app.inject({ method: 'POST', url: '/auth/invitations', headers: owner.headers, payload: { email: address, role: 'viewer' } })
    const count = (await app.pg.pool.query('SELECT count(*)::int AS n FROM invitations WHERE lower(email) = lower($1)', [address])).rows[0].n as number
    return { id: res.json().id, token: (await waitForEmail(app, address, count)).token }
  }
  const form = (fields: Record<string, string>) => ({ method: 'POST' as const, url: '/auth/invitations/accept', headers: FORM, payload: new URLSearchParams(fields).toString() })

  const eve = await invite('eve@example.com')
  const short = await app.inject(form({ token: eve.token, name: 'ev', password: PASSWORD }))
  t.equal(short.statusCode, 400)
  t.match(short.body, /<form/, 'the form again, with the reason')
  const common = await app.inject(form({ token: eve.token, name: 'eve', password: 'password1234' }))
  t.equal(common.statusCode, 400)
  t.match(common.body, /password/)
  t.equal((await app.inject(form({ name: 'eve' }))).statusCode, 400)
  const ok = await app.inject(form({ token: eve.token, name: 'eve', password: PASSWORD }))
  t.equal(ok.statusCode, 200)
  t.match(ok.body, /Welcome to Roster/)
  const used = await app.inject(form({ token: eve.token, name: 'eve2', password: PASSWORD }))
  t.equal(used.statusCode, 400)
  t.match(used.body, /cannot be used/)

  const fay = await invite('fay@example.com')
  const taken = await app.inject(form({ token: fay.token, name: 'eve', password: PASSWORD }))
  t.equal(taken.statusCode, 409, 'a taken name: the form again')
  t.match(taken.body, /<form/)
  const newer = await invite('fay@example.com')
  t.equal((await app.inject({ method: 'POST', url: '/auth/invitations/accept', payload: { token: fay.token, name: 'fay', password: PASSWORD } })).statusCode, 400, 'a newer invitation voids the older link')
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/invitations/${newer.id}`, headers: owner.headers })).statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/invitations/${newer.id}`, headers: owner.headers })).statusCode, 404)
  t.equal((await app.inject({ method: 'POST', url: '/auth/invitations/accept', payload: { token: newer.token, name: 'fay', password: PASSWORD } })).statusCode, 400, 'a revoked link does not work')

  const gus = await invite('gus@example.com')
  await app.pg.pool.query("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1", [gus.id])
  t.equal((await app.inject({ method: 'POST', url: '/auth/invitations/accept', payload: { token: gus.token, name: 'gus', password: PASSWORD } })).statusCode, 400, 'an expired link does not work')

  // Their dispatchers off: the invitations' emails are sent (and read) by `app` alone.
  const closed = await build(t, { databaseUrl: app.databaseUrl, env: { REGISTRATION: 'closed', MAIL_DISPATCHER: 'false' } })
  const hal = await invite('hal@example.com')
  const refused = await closed.inject({ method: 'POST', url: '/auth/invitations', headers: owner.headers, payload: { email: 'x@example.com', role: 'viewer' } })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'ROSTER_INVITATIONS_CLOSED')
  t.equal((await closed.inject({ method: 'POST', url: '/auth/invitations/accept', payload: { token: hal.token, name: 'hal', password: PASSWORD } })).statusCode, 403, 'nor accepted')
  t.equal((await closed.inject(form({ token: hal.token, name: 'hal', password: PASSWORD }))).statusCode, 403)
  const domains = await build(t, { databaseUrl: app.databaseUrl, env: { ADMIN_EMAIL_DOMAINS: 'example.org', MAIL_DISPATCHER: 'false' } })
  t.equal((await domains.inject({ method: 'POST', url: '/auth/invitations', headers: owner.headers, payload: { email: 'x@example.com', role: 'viewer' } })).statusCode, 403, 'ADMIN_EMAIL_DOMAINS applies')
})
