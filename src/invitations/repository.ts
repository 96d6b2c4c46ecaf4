import type { Role } from '../../schemas/admins.ts'
import type { InvitationView } from '../../schemas/invitations.ts'
import { hashToken, randomToken } from '../infra/crypto.ts'
import type { Database, Queryable } from '../infra/database.ts'
import { iso } from '../infra/sql.ts'

/** How long an invitation link works, in seconds: 72 h. */
export const INVITATION_TTL = 72 * 3600

const COLUMNS = `id, email, role, invited_by AS "invitedBy", ${iso('created_at')} AS "createdAt", ${iso('expires_at')} AS "expiresAt"`
const PENDING = 'accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()'

/** A new invitation; the email's earlier pending ones are revoked in the same statement (only the latest link works). */
const INSERT = {
  name: 'invitations_insert',
  text: `WITH earlier AS (
      UPDATE invitations SET revoked_at = now() WHERE lower(email) = lower($1) AND ${PENDING}
    )
    INSERT INTO invitations (email, role, token_hash, invited_by, expires_at) VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::int))
    RETURNING ${COLUMNS}`
}
const LIST = { name: 'invitations_list', text: `SELECT ${COLUMNS} FROM invitations WHERE ${PENDING} ORDER BY created_at DESC, id DESC LIMIT $1` }
const REVOKE = { name: 'invitations_revoke', text: `UPDATE invitations SET revoked_at = now() WHERE id = $1 AND ${PENDING} RETURNING email` }
const PEEK = { name: 'invitations_peek', text: `SELECT ${COLUMNS} FROM invitations WHERE token_hash = $1 AND ${PENDING}` }
const ACCEPT = { name: 'invitations_accept', text: `UPDATE invitations SET accepted_at = now() WHERE token_hash = $1 AND ${PENDING} RETURNING ${COLUMNS}` }

/** The invitations table; each function one named statement, on the pool or the caller's `tx`. */
export function createInvitationsRepository (db: Database) {
  return {
    /** Stores an invitation and answers it with its token (32 random bytes, base64url; only its SHA-256 is stored). */
    async insert (tx: Queryable, values: { email: string, role: Role, invitedBy: string }): Promise<{ invitation: InvitationView, token: string }> {
      const token = randomToken()
      const { rows } = await tx.query<InvitationView>({ ...INSERT, values: [values.email, values.role, hashToken(token), values.invitedBy, INVITATION_TTL] })
      return { invitation: rows[0] as InvitationView, token }
    },
    async list (limit: number): Promise<InvitationView[]> {
      return (await db.query<InvitationView>({ ...LIST, values: [limit] })).rows
    },
    /** Revokes a pending invitation; its email, or null when there is no pending one with this id. */
    async revoke (tx: Queryable, id: string): Promise<string | null> {
      return (await tx.query<{ email: string }>({ ...REVOKE, values: [id] })).rows[0]?.email ?? null
    },
    /** The pending invitation of a token, without using it up. */
    async peek (token: string): Promise<InvitationView | null> {
      return (await db.query<InvitationView>({ ...PEEK, values: [hashToken(token)] })).rows[0] ?? null
    },
    /** Uses up a pending invitation; null when it is unknown, expired, revoked or used. */
    async accept (tx: Queryable, token: string): Promise<InvitationView | null> {
      /* c8 ignore next -- null only when used or revoked since peek() (see the service) */
      return (await tx.query<InvitationView>({ ...ACCEPT, values: [hashToken(token)] })).rows[0] ?? null
    }
  }
}
