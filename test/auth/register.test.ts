import t from 'tap'
import { build, waitForEmail, waitUntil } from '../helper.ts'
import { emailDomainAllowed, emailProblem, loadPasswordPolicy, nameProblem } from '../../src/admins/policy.ts'

const register = (payload: Record<string, unknown>) => ({ method: 'POST' as const, url: '/auth/register', payload })
const GOOD = 'a perfectly fine passphrase'

t.test('registration validates email, name and password as documented', async (t) => {
  const app = await build(t)
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['email not an address', { email: 'nope', name: 'ann', password: GOOD }, '/body/email', /format/],
    ['email too long', { email: `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(60)}.com`, name: 'ann', password: GOOD }, '/body/email', /254/],
    ['name too short', { email: 'a@example.com', name: 'an', password: GOOD }, '/body/name', /3/],
    ['name too long', { email: 'a@example.com', name: 'a'.repeat(33), password: GOOD }, '/body/name', /32/],
    ['name with a space', { email: 'a@example.com', name: 'an n', password: GOOD }, '/body/name', /pattern/],
    ['name with a non-ASCII letter', { email: 'a@example.com', name: 'аnn', password: GOOD }, '/body/name', /pattern/],
    ['password too short', { email: 'a@example.com', name: 'ann', password: 'eleven char' }, '/body/password', /12/],
    ['password too long', { email: 'a@example.com', name: 'ann', password: 'x'.repeat(129) }, '/body/password', /128/],
    ['common password', { email: 'a@example.com', name: 'ann', password: '1q2w3e4r5t6y' }, '/body/password', /too common/],
    ['common password, other case', { email: 'a@example.com', name: 'ann', password: 'QWERTY123456' }, '/body/password', /too common/],
    ['password = email', { email: 'Longer.Address@example.com', name: 'ann', password: 'longer.address@EXAMPLE.com' }, '/body/password', /email/],
    ['password = local part of the email', { email: 'averyveryverylongname@example.com', name: 'ann', password: 'AVeryVeryVeryLongName' }, '/body/password', /email/],
    ['password = name', { email: 'a@example.com', name: 'Annabel.Smith', password: 'annabel.smith' }, '/body/password', /name/],
    ['unknown field', { email: 'a@example.com', name: 'ann', password: GOOD, admin: true }, '/body/admin', /not allowed/],
    ['missing field', { email: 'a@example.com', password: GOOD }, '/body/name', /required/]
  ]
  for (const [what, payload, path, message] of cases) {
    const res = await app.inject(register(payload))
    t.equal(res.statusCode, 400, what)
    t.match(res.headers['content-type'], /problem\+json/)
    t.match(res.json(), { code: 'ROSTER_VALIDATION_FAILED', errors: [{ path, message }] }, what)
  }
  t.equal((await app.pg.pool.query('SELECT count(*)::int AS n FROM admins')).rows[0].n, 0, 'nothing was created')

  const ok = await app.inject(register({ email: 'a@example.com', name: 'a.n-n_1', password: 'passwords of 128 chars are fine '.repeat(4) }))
  t.equal(ok.statusCode, 201, ok.body)
  const emoji = await app.inject(register({ email: 'e@example.com', name: 'emoji', password: '🔑'.repeat(12) }))
  t.equal(emoji.statusCode, 201, 'twelve characters, whatever they are')
})

t.test('an email that has an account is answered like a new one; its owner is told; a taken name is a 409', async (t) => {
  const app = await build(t)
  const first = await app.inject(register({ email: 'Ann@Example.com', name: 'Ann', password: GOOD }))
  t.equal(first.statusCode, 201)
  const mail = await waitForEmail(app, 'Ann@Example.com')
  t.equal(mail.subject, 'Confirm your Roster account')

  const again = await app.inject(register({ email: 'ann@EXAMPLE.com', name: 'other', password: GOOD }))
  t.equal(again.statusCode, 201, 'the same status')
  t.same(Object.keys(again.json()), Object.keys(first.json()), 'the same shape')
  t.same(again.headers['content-type'], first.headers['content-type'])
  t.match(again.json(), { email: 'ann@EXAMPLE.com', name: 'other', confirmed: false, pendingEmail: null })
  t.not(again.json().id, first.json().id, 'an id of no account')
  t.equal(await app.admins.repository.get(again.json().id), null)
  t.match(again.json().createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'timestamps formatted alike')

  const notice = await waitForEmail(app, 'Ann@Example.com', 2)
  t.equal(notice.subject, 'Someone tried to register with your address', 'the owner is told, at the address of the account')
  t.match(notice.text, /Hello Ann,/)
  t.match(notice.link, /\/auth\/password\/reset\?token=/, 'with a reset link, should it have been them')
  const reset = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: notice.token, password: 'a brand new passphrase' } })
  t.equal(reset.statusCode, 204, 'which works')
  t.same((await app.pg.pool.query("SELECT action, target_id, changes FROM audit_events WHERE action = 'admin.register_attempt'")).rows, [{ action: 'admin.register_attempt', target_id: first.json().id, changes: {} }], 'the attempt is audited')

  const name = await app.inject(register({ email: 'other@example.com', name: 'aNN', password: GOOD }))
  t.equal(name.statusCode, 409)
  t.match(name.json(), { code: 'ROSTER_NAME_TAKEN', detail: /^name: / })
  const both = await app.inject(register({ email: 'ANN@example.com', name: 'ann', password: GOOD }))
  t.equal(both.statusCode, 409, 'a taken name is a 409 whether or not the email has an account')
  t.match(both.json(), { code: 'ROSTER_NAME_TAKEN' })
  t.equal((await app.pg.pool.query('SELECT count(*)::int AS n FROM admins')).rows[0].n, 1, 'no account was created')

  // At most EMAILS_PER_HOUR emails a hour to the owner, with the password reset emails.
  for (let i = 0; i < 6; i++) t.equal((await app.inject(register({ email: 'ann@example.com', name: `try${i}x`, password: GOOD }))).statusCode, 201)
  await app.admins.drain()
  t.equal((await app.pg.pool.query("SELECT count(*)::int AS n FROM email_outbox WHERE template = 'register_existing'")).rows[0].n, 5)
  t.match(app.logs.text(), /registration with an existing address: no email sent, hourly limit for this account reached/)
})

t.test('an email registered concurrently, after the registration looked, is answered alike', async (t) => {
  const app = await build(t)
  const client = await app.pg.pool.connect()
  t.after(() => { client.release() })
  await client.query('BEGIN')
  await client.query("INSERT INTO admins (email, name, password_hash) VALUES ('race@example.com', 'first', 'x')")
  const pending = app.inject(register({ email: 'Race@example.com', name: 'second', password: GOOD }))
  await waitUntil(async () => (await app.pg.pool.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO admins%'")).rows.length > 0, { what: 'the registration to wait for the uncommitted row' })
  await client.query('COMMIT')
  const res = await pending
  t.equal(res.statusCode, 201)
  t.match(res.json(), { email: 'Race@example.com', name: 'second', confirmed: false })
  t.same((await app.pg.pool.query('SELECT name FROM admins')).rows, [{ name: 'first' }])
})

t.test('passwords are compared in NFKC form', async (t) => {
  const app = await build(t)
  t.equal((await app.inject(register({ email: 'u@example.com', name: 'uni', password: 'ﬁne ligatures everywhere' }))).statusCode, 201)
  await app.pg.pool.query('UPDATE admins SET confirmed_at = now()')
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'u@example.com', password: 'fine ligatures everywhere' } })
  t.equal(res.statusCode, 200, 'the same characters, composed differently')
})

t.test('REGISTRATION=closed and ADMIN_EMAIL_DOMAINS', async (t) => {
  const closed = await build(t, { env: { REGISTRATION: 'closed' } })
  const res = await closed.inject(register({ email: 'a@example.com', name: 'ann', password: GOOD }))
  t.equal(res.statusCode, 403)
  t.match(res.json(), { code: 'ROSTER_REGISTRATION_CLOSED', detail: /create-admin/ })

  const limited = await build(t, { env: { ADMIN_EMAIL_DOMAINS: 'example.com,@Corp.example' } })
  const outside = await limited.inject(register({ email: 'a@elsewhere.net', name: 'ann', password: GOOD }))
  t.equal(outside.statusCode, 403)
  t.match(outside.json(), { code: 'ROSTER_EMAIL_DOMAIN_NOT_ALLOWED', detail: 'email: admin accounts are limited to addresses at example.com, @Corp.example' })
  t.equal((await limited.inject(register({ email: 'a@sub.example.com', name: 'ann', password: GOOD }))).statusCode, 403, 'subdomains are other domains')
  t.equal((await limited.inject(register({ email: 'a@EXAMPLE.com', name: 'ann', password: GOOD }))).statusCode, 201)
  t.equal((await limited.inject(register({ email: 'b@corp.example', name: 'bob', password: GOOD }))).statusCode, 201)
})

t.test('policy helpers', async (t) => {
  const policy = await loadPasswordPolicy()
  t.equal(policy('a'.repeat(12)), null, 'length alone is no rule')
  t.match(policy('x'.repeat(11)), /at least 12/)
  t.match(policy('x'.repeat(129)), /at most 128/)
  t.match(policy('123qweasdzxc'), /too common/)
  t.equal(policy('a fine passphrase', { emails: [undefined], names: [undefined] }), null)
  t.equal(emailProblem('ann@example.com'), null)
  t.match(emailProblem('ann'), /valid email/)
  t.match(emailProblem(`${'a'.repeat(250)}@b.co`), /254/)
  t.equal(nameProblem('ann'), null)
  t.match(nameProblem('a n'), /3 to 32/)
  t.equal(emailDomainAllowed('')('x@anything.example'), true)
})
