import { errors } from './errors.ts'

/** Who acts, for the audit log and the rules that depend on it: an admin or an API client, and the request. */
export interface Actor {
  type: 'admin' | 'client'
  id: string
  requestId: string
  /** The client's address (request.ip: the socket's peer, or what TRUST_PROXY trusts). */
  ip: string
}

/** An admin acting through a session: its own account, sessions, MFA. */
export interface AdminActor extends Actor {
  type: 'admin'
  sessionId: string
  /** When the admin last proved who they are (login or a fresh code), seconds since the epoch; the token's auth_time. */
  authTime: number | null
}

/** How recent a login (or a fresh code) must be for a sensitive change (step-up), in seconds. */
export const STEP_UP_MAX_AGE = 300

/**
 * Step-up: deleting one's account, changing email or password, disabling MFA
 * and managing API clients need a login within the last STEP_UP_MAX_AGE
 * seconds; otherwise a 401 that says so (RFC 9470's insufficient_user_authentication).
 */
export function requireRecentLogin (actor: AdminActor, now = Date.now()): void {
  if (actor.authTime === null || now / 1000 - actor.authTime > STEP_UP_MAX_AGE) {
    throw Object.assign(new errors.ReauthenticationRequired(`This change needs a login within the last ${STEP_UP_MAX_AGE / 60} minutes: confirm it is you with POST /auth/reauthenticate (your password, or a current code with two-factor login), or log in again, and retry with the new access token`), { stepUp: true })
  }
}
