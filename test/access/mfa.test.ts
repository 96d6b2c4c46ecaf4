import t from 'tap'
import * as OTPAuth from 'otpauth'
import { build, createAdmin, loginAs } from '../helper.ts'
import { authenticator, enrolTotp, loginWithMfa } from './helpers.ts'
import { base32, hotp, matchingStep, otpauthUri, timeStep } from '../../src/infra/totp.ts'
import { createSecretBox } from '../../src/infra/secret-box.ts'
import { hashPassword } from '../../src/infra/passwords.ts'

t.test('TOTP agrees with an independent implementation (otpauth): codes, skew, URI', async (t) => {
  const secret = Buffer.from('12345678901234567890')
  const theirs = new OTPAuth.TOTP({ secret: new OTPAuth.Secret({ buffer: new Uint8Array(secret).buffer }), algorithm: 'SHA1', digits: 6, period: 30 })
  // RFC 6238 appendix B's times (SHA-1 rows), and some more.
  for (const seconds of [59, 1111111109, 1111111111, 1234567890, 2000000000, 20000000000, Math.floor(Date.now() / 1000)]) {
    t.equal(hotp(secret, timeStep(seconds * 1000)), theirs.generate({ timestamp: seconds * 1000 }), `code at ${seconds}`)
  }
  t.equal(hotp(secret, timeStep(59_000)), '287082', 'RFC 6238 B: 94287082, last 6 digits')
  const now = Date.now()
  const step = timeStep(now)
  t.equal(matchingStep(secret, theirs.generate({ timestamp: now }), null, now), step)
  t.equal(matchingStep(secret, theirs.generate({ timestamp: now - 30_000 }), null, now), step - 1, 'one step behind is accepted')
  t.equal(matchingStep(secret, theirs.generate({ timestamp: now + 30_000 }), null, now), step + 1, 'one step ahead is accepted')
  t.equal(matchingStep(secret, theirs.generate({ timestamp: now - 60_000 }), null, now), null, 'two steps behind is not')
  t.equal(matchingStep(secret, theirs.generate({ timestamp: now }), step, now), null, 'a code of a step already used is not')
  t.equal(base32(secret), new OTPAuth.Secret({ buffer: new Uint8Array(secret).buffer }).base32)
  for (const [plain, encoded] of [['f', 'MY'], ['fo', 'MZXQ'], ['foo', 'MZXW6'], ['foob', 'MZXW6YQ'], ['fooba', 'MZXW6YTB']]) t.equal(base32(Buffer.from(plain as string)), encoded, `RFC 4648 §10: ${plain}`)
  const parsed = OTPAuth.URI.parse(otpauthUri(secret, 'Roster', 'ann@example.com')) as OTPAuth.TOTP
  t.match(parsed, { issuer: 'Roster', label: 'ann@example.com', algorithm: 'SHA1', digits: 6, period: 30 })
  t.equal(parsed.secret.base32, base32(secret))
})

t.test('the secret box: AES-256-GCM, bound to its row and its key', async (t) => {
  const box = createSecretBox('a secret key of the test', 'totp secret')
  const sealed = box.seal(Buffer.from('plain'), 'row-1')
  t.match(sealed, /^v1\.[\w-]+\.[\w-]+\.[\w-]+$/)
  t.notMatch(sealed, /plain/)
  t.equal(box.open(sealed, 'row-1').toString(), 'plain')
  t.throws(() => box.open(sealed, 'row-2'), 'another row')
  t.throws(() => createSecretBox('another key', 'totp secret').open(sealed, 'row-1'), 'another key')
  t.throws(() => box.open('v2.a.b.c', 'row-1'), /not a sealed secret/)
})

t.test('enrol → login with a code → replay refused → recovery code → disable', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000' } })
  const admin = await createAdmin(app, { role: 'viewer' })
  const s = await loginAs(app, admin)

  const verifyFirst = await app.inject({ method: 'POST', url: '/auth/mfa/totp/verify', headers: s.headers, payload: { code: '123456' } })
  t.equal(verifyFirst.statusCode, 409, 'nothing to verify before an enrolment starts')
  t.equal(verifyFirst.json().code, 'ROSTER_MFA_NOT_STARTED')
  const start = await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: s.headers })
  t.equal(start.statusCode, 201)
  const enrolment = start.json()
  t.match(enrolment, { secret: /^[A-Z2-7]{32}$/, otpauth_uri: /^otpauth:\/\/totp\/Roster:/, algorithm: 'SHA1', digits: 6, period: 30 })
  const { rows: [stored] } = await app.pg.pool.query('SELECT totp_secret, totp_enabled_at FROM admins WHERE id = $1', [admin.id])
  t.notMatch(stored.totp_secret, enrolment.secret, 'the secret is stored encrypted, not plain')
  t.match(stored.totp_secret, /^v1\./)
  t.equal(stored.totp_enabled_at, null, 'not active yet')
  t.ok('access_token' in (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })).json(), 'a login still needs no code')

  const totp = authenticator(enrolment.secret)
  const wrong = await app.inject({ method: 'POST', url: '/auth/mfa/totp/verify', headers: s.headers, payload: { code: totp.generate({ timestamp: Date.now() - 120_000 }) } })
  t.equal(wrong.statusCode, 400, 'a wrong code does not activate')
  const verify = await app.inject({ method: 'POST', url: '/auth/mfa/totp/verify', headers: s.headers, payload: { code: totp.generate({ timestamp: Date.now() - 30_000 }) } })
  t.equal(verify.statusCode, 200)
  const codes = verify.json().recovery_codes as string[]
  t.equal(codes.length, 10)
  t.equal(new Set(codes).size, 10)
  for (const c of codes) t.match(c, /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/)
  const { rows: hashes } = await app.pg.pool.query('SELECT code_hash FROM mfa_recovery_codes WHERE admin_id = $1', [admin.id])
  t.equal(hashes.length, 10)
  t.notOk(hashes.some((h) => codes.includes(h.code_hash)), 'recovery codes are stored hashed')
  t.equal((await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: s.headers })).statusCode, 409, 'already active')
  t.equal((await app.inject({ method: 'POST', url: '/auth/mfa/totp/verify', headers: s.headers, payload: { code: totp.generate() } })).json().code, 'ROSTER_MFA_ALREADY_ENABLED')
  t.equal((await app.inject({ url: '/auth/me', headers: s.headers })).json().mfa, true)

  // Login: the password answers an mfa_token, which is no bearer token.
  const first = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.equal(first.statusCode, 200)
  t.same(Object.keys(first.json()).sort(), ['expires_in', 'mfa_required', 'mfa_token'])
  const mfaToken = first.json().mfa_token as string
  t.equal(first.json().expires_in, 300)
  t.equal((await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${mfaToken}` } })).statusCode, 401, 'an mfa_token is not an access token')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: s.accessToken, code: totp.generate() } })).statusCode, 401, 'nor an access token an mfa_token')
  const badCode = await app.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: mfaToken, code: totp.generate({ timestamp: Date.now() - 90_000 }) } })
  t.equal(badCode.statusCode, 401)
  t.equal(badCode.json().code, 'ROSTER_INVALID_MFA_CODE')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: mfaToken } })).statusCode, 400, 'a code or a recovery code is needed')
  const code = totp.generate()
  const done = await app.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: mfaToken, code } })
  t.equal(done.statusCode, 200)
  t.same(Object.keys(done.json()).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type'])
  t.equal((await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${done.json().access_token}` } })).statusCode, 200)
  const { rows: throttle } = await app.pg.pool.query('SELECT client, failures FROM login_throttle ORDER BY client')
  t.same(throttle, [{ client: '*', failures: 1 }], 'a completed login gives back its password\'s and its code\'s attempts (its address\'s count goes); the wrong code stays counted account-wide')

  const again = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const replay = await app.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: again.json().mfa_token, code } })
  t.equal(replay.statusCode, 401, 'the same code is not accepted twice')
  const reused = await app.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: mfaToken, recovery_code: codes[0] } })
  t.equal(reused.statusCode, 401, 'an mfa_token completes one login only')
  t.equal(reused.json().code, 'ROSTER_INVALID_MFA_CODE')

  const wrongRecovery = await app.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: again.json().mfa_token, recovery_code: 'aaaa-aaaa-aaaa-aaaa' } })
  t.equal(wrongRecovery.statusCode, 401)
  const recovered = await app.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: again.json().mfa_token, recovery_code: (codes[1] as string).toUpperCase().replace(/-/g, ' ') } })
  t.equal(recovered.statusCode, 200, 'a recovery code, in any case and spacing, after a wrong one (the token stays usable)')
  await t.rejects(loginWithMfa(app, admin, { recovery_code: codes[1] as string }), /401/, 'a recovery code is single use')

  // Disabling needs a code, counts wrong ones, and needs a recent login.
  const fresh = await loginWithMfa(app, admin, { recovery_code: codes[2] as string })
  const noFactor = await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: fresh.headers, payload: {} })
  t.equal(noFactor.statusCode, 400)
  const wrongDisable = await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: fresh.headers, payload: { code: totp.generate() === '000000' ? '111111' : '000000' } })
  t.equal(wrongDisable.statusCode, 401)
  t.equal(wrongDisable.json().code, 'ROSTER_WRONG_MFA_CODE')
  t.same((await app.pg.pool.query('SELECT failures FROM login_throttle WHERE client = $1', ['127.0.0.1'])).rows, [{ failures: 1 }], 'the wrong code counted towards the lockout of its address')
  const off = await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: fresh.headers, payload: { recovery_code: codes[3] } })
  t.equal(off.statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: fresh.headers, payload: { recovery_code: codes[4] } })).statusCode, 409, 'not active any more')
  t.same((await app.pg.pool.query('SELECT count(*)::int AS n FROM mfa_recovery_codes')).rows, [{ n: 0 }])
  t.ok('access_token' in (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })).json(), 'a login needs no code again')
  const { rows: events } = await app.pg.pool.query("SELECT action FROM audit_events WHERE action LIKE 'admin.mfa%' ORDER BY created_at")
  t.same(events.map((e) => e.action), ['admin.mfa_enable', 'admin.mfa_disable'])
})

t.test('wrong codes count towards the lockout; an expired or forged mfa_token is refused', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000', LOCKOUT_THRESHOLD: '3' } })
  const admin = await createAdmin(app)
  const s = await loginAs(app, admin)
  await enrolTotp(app, s)
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const token = login.json().mfa_token as string
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await app.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: token, code: '000000' } })).statusCode)
  t.same(statuses, [401, 401, 429], 'the password counted once, two wrong codes: locked at the third attempt')
  const locked = await app.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: token, code: '000001' } })
  t.equal(locked.statusCode, 429)
  t.ok(Number(locked.headers['retry-after']) > 0)
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })).statusCode, 429, 'and so is the password')
  t.equal((await app.inject({ method: 'POST', url: '/auth/reauthenticate', headers: s.headers, payload: { code: '000000' } })).statusCode, 429, 'and a step-up')

  const [h, p, sig] = token.split('.') as [string, string, string]
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString())
  const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: admin.id, email: 'other@example.com' })).toString('base64url')}.${sig}`
  t.equal((await app.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: forged, code: '000000' } })).json().code, 'ROSTER_INVALID_MFA_TOKEN')
  const expired = await app.auth.mfaTokens.verify(token)
  t.ok(expired !== null && expired.exp - Math.floor(Date.now() / 1000) <= 300, 'valid 5 minutes')
  await app.pg.pool.query('DELETE FROM admins WHERE id = $1', [admin.id])
  await app.pg.pool.query('DELETE FROM login_throttle')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: token, code: '000000' } })).json().code, 'ROSTER_INVALID_MFA_TOKEN', 'the admin is gone')
  t.match(await app.retention.run(), { mfa_token_uses: 0 }, 'the used jti stays while its mfa_token could be presented')
})

t.test('disabling with a current code; a password upgraded at a login that goes on with its code', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000' } })
  const admin = await createAdmin(app)
  const s = await loginAs(app, admin)
  const { totp } = await enrolTotp(app, s)
  const weaker = await hashPassword(admin.password, { memoryCost: 2048, timeCost: 1, parallelism: 1 })
  await app.pg.pool.query('UPDATE admins SET password_hash = $2 WHERE id = $1', [admin.id, weaker])
  const first = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.ok('mfa_token' in first.json())
  const { rows: [row] } = await app.pg.pool.query('SELECT password_hash FROM admins WHERE id = $1', [admin.id])
  t.not(row.password_hash, weaker, 'rehashed at the configured cost')
  const off = await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: s.headers, payload: { code: totp.generate() } })
  t.equal(off.statusCode, 204)
  // A token issued before auth_time existed (an upgrade): it works, but never counts as a recent login.
  const legacy = { authorization: `Bearer ${app.jwt.sign({ sub: admin.id, sid: s.sessionId, jti: 'legacy' })}` }
  t.equal((await app.inject({ url: '/auth/me', headers: legacy })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/me', headers: legacy, payload: { currentPassword: admin.password } })).json().code, 'ROSTER_REAUTHENTICATION_REQUIRED')
})

t.test('MFA_REQUIRED: an admin without MFA can only enrol, read their account and log out', async (t) => {
  const app = await build(t, { env: { MFA_REQUIRED: 'true', AUTH_RATE_LIMIT: '100000' } })
  const admin = await createAdmin(app)
  const s = await loginAs(app, admin)
  const refused = await app.inject({ url: '/users', headers: s.headers })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'ROSTER_MFA_ENROLMENT_REQUIRED')
  t.equal((await app.inject({ url: '/auth/sessions', headers: s.headers })).statusCode, 403)
  t.equal((await app.inject({ url: '/auth/me', headers: s.headers })).statusCode, 200)
  const { totp } = await enrolTotp(app, s)
  t.equal((await app.inject({ url: '/users', headers: s.headers })).statusCode, 200, 'once enrolled, at once on this instance')
  const other = await loginWithMfa(app, admin, { code: totp.generate() })
  t.equal((await app.inject({ url: '/users', headers: other.headers })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: other.headers })).statusCode, 204)
})

t.test('step-up: sensitive changes need a login within 5 minutes', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000' } })
  const admin = await createAdmin(app)
  const s = await loginAs(app, admin)
  // A token whose session began 6 minutes ago (the refreshed tokens carry the session's authentication time).
  await app.pg.pool.query("UPDATE sessions SET authenticated_at = now() - interval '6 minutes' WHERE id = $1", [s.sessionId])
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: s.refreshToken } })
  const old = { authorization: `Bearer ${refreshed.json().access_token}` }
  const claims = JSON.parse(Buffer.from((refreshed.json().access_token as string).split('.')[1] as string, 'base64url').toString())
  t.ok(Math.floor(Date.now() / 1000) - claims.auth_time >= 359, 'auth_time is the login\'s, not the refresh\'s')
  const attempts = [
    { method: 'DELETE' as const, url: '/auth/me', payload: { currentPassword: admin.password } },
    { method: 'PATCH' as const, url: '/auth/me', payload: { password: 'another long password 1', currentPassword: admin.password } },
    { method: 'PATCH' as const, url: '/auth/me', payload: { email: 'new@example.com', currentPassword: admin.password } },
    { method: 'DELETE' as const, url: '/auth/mfa/totp', payload: { code: '123456' } },
    { method: 'POST' as const, url: '/auth/clients', payload: { name: 'x', scopes: ['users:read'] } }
  ]
  for (const a of attempts) {
    const res = await app.inject({ ...a, headers: old })
    t.equal(res.statusCode, 401, `${a.method} ${a.url}`)
    t.equal(res.json().code, 'ROSTER_REAUTHENTICATION_REQUIRED')
    t.match(res.headers['www-authenticate'], /error="insufficient_user_authentication", max_age=300/)
  }
  t.equal((await app.inject({ method: 'PATCH', url: '/auth/me', headers: old, payload: { name: 'renamed' } })).statusCode, 200, 'a name change needs no step-up')
  const fresh = await loginAs(app, admin)
  t.equal((await app.inject({ method: 'POST', url: '/auth/clients', headers: fresh.headers, payload: { name: 'x', scopes: ['users:read'] } })).statusCode, 201, 'after a new login')

  // Or a fresh proof in the same session: the password, or with MFA a code.
  const reauth = (headers: { authorization: string }, payload: Record<string, string>) => app.inject({ method: 'POST', url: '/auth/reauthenticate', headers, payload })
  t.equal((await reauth(old, {})).statusCode, 400, 'the password is required')
  const wrong = await reauth(old, { password: 'not the password at all' })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'ROSTER_WRONG_PASSWORD')
  const stepped = await reauth(old, { password: admin.password })
  t.equal(stepped.statusCode, 200)
  const steppedHeaders = { authorization: `Bearer ${stepped.json().access_token}` }
  t.equal((await app.inject({ method: 'POST', url: '/auth/clients', headers: steppedHeaders, payload: { name: 'y', scopes: ['users:read'] } })).statusCode, 201, 'a step-up in the same session')
  t.same((await app.pg.pool.query('SELECT client, failures FROM login_throttle ORDER BY client')).rows, [{ client: '*', failures: 1 }], 'the right password gave its attempt back and forgot its address\'s count; the wrong one stays counted account-wide')

  const { totp } = await enrolTotp(app, fresh)
  t.equal((await reauth(fresh.headers, { password: admin.password })).statusCode, 400, 'with MFA, a code is required')
  const code = totp.generate()
  t.equal((await reauth(fresh.headers, { code: code === '000000' ? '111111' : '000000' })).json().code, 'ROSTER_INVALID_MFA_CODE')
  t.equal((await reauth(fresh.headers, { code })).statusCode, 200)
  t.equal((await reauth(fresh.headers, { code })).statusCode, 401, 'a code is accepted once')
})
