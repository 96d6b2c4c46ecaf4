import * as OTPAuth from 'otpauth'
import type { TestApp, TestSession } from '../helper.ts'
import { session } from '../helper.ts'

/** Creates an API client through the API (as an owner with a fresh login) and answers its credentials. */
export async function createClient (app: TestApp, owner: TestSession, scopes: string[], name = 'machine'): Promise<{ id: string, secret: string }> {
  const res = await app.inject({ method: 'POST', url: '/auth/clients', headers: owner.headers, payload: { name, scopes } })
  if (res.statusCode !== 201) throw new Error(`createClient: ${res.statusCode} ${res.body}`)
  const body = res.json<{ client_id: string, client_secret: string }>()
  return { id: body.client_id, secret: body.client_secret }
}

/** POST /auth/token with HTTP Basic, form-encoded, as RFC 6749 §4.4 says. */
export async function clientToken (app: TestApp, client: { id: string, secret: string }, scope?: string): Promise<{ authorization: string }> {
  const basic = Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')
  const res = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'client_credentials', ...(scope === undefined ? {} : { scope }) }).toString()
  })
  if (res.statusCode !== 200) throw new Error(`clientToken: ${res.statusCode} ${res.body}`)
  return { authorization: `Bearer ${res.json<{ access_token: string }>().access_token}` }
}

/** An authenticator app, as an independent implementation (otpauth) sees the enrolment's secret. */
export function authenticator (secret: string): OTPAuth.TOTP {
  return new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 })
}

/** Enrols TOTP for a logged-in admin through the API; answers the authenticator and the recovery codes. */
export async function enrolTotp (app: TestApp, s: TestSession): Promise<{ totp: OTPAuth.TOTP, recoveryCodes: string[] }> {
  const start = await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: s.headers })
  if (start.statusCode !== 201) throw new Error(`enrolTotp: ${start.statusCode} ${start.body}`)
  const totp = authenticator(start.json<{ secret: string }>().secret)
  // The previous step's code: the login that follows may then use the current one (a code is accepted once).
  const verify = await app.inject({ method: 'POST', url: '/auth/mfa/totp/verify', headers: s.headers, payload: { code: totp.generate({ timestamp: Date.now() - 30_000 }) } })
  if (verify.statusCode !== 200) throw new Error(`enrolTotp: ${verify.statusCode} ${verify.body}`)
  return { totp, recoveryCodes: verify.json<{ recovery_codes: string[] }>().recovery_codes }
}

let mfaLogins = 0

/** A full login with two-factor: password, then the code (or a recovery code). */
export async function loginWithMfa (app: TestApp, admin: { email: string, password: string }, factor: { code: string } | { recovery_code: string }): Promise<TestSession> {
  const remoteAddress = `10.250.${(++mfaLogins >> 8) & 255}.${mfaLogins & 255}`
  const first = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password }, remoteAddress })
  const token = first.json<{ mfa_token?: string }>().mfa_token
  if (token === undefined) throw new Error(`loginWithMfa: ${first.statusCode} ${first.body}`)
  const second = await app.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: token, ...factor }, remoteAddress })
  if (second.statusCode !== 200) throw new Error(`loginWithMfa: ${second.statusCode} ${second.body}`)
  return session(second.json())
}
