import { and, eq, gt, inArray, isNull, sql } from 'drizzle-orm'
import type { NodePgDatabase } from 'drizzle-orm/node-postgres'
import { accountTokens } from '../../db/schema/auth.ts'
import { hashToken, randomToken } from './crypto.ts'

type Db = Pick<NodePgDatabase<Record<string, unknown>>, 'insert' | 'select' | 'update' | 'execute'>

export type TokenPurpose = 'confirm_account' | 'confirm_email' | 'reset_password'

/** Lifetimes of emailed tokens, in seconds: 24 h to confirm, 1 h to reset a password. */
export const TOKEN_TTL: Record<TokenPurpose, number> = {
  confirm_account: 24 * 3600,
  confirm_email: 24 * 3600,
  reset_password: 3600
}

/** At most this many emails of one kind per account per hour (against mail bombing through resend/forgot). */
export const EMAILS_PER_HOUR = 5

/** Issues a single-use token (32 random bytes, base64url); only its SHA-256 is stored. */
export async function issueAccountToken (tx: Db, adminId: string, purpose: TokenPurpose, email?: string): Promise<string> {
  const token = randomToken()
  await tx.insert(accountTokens).values({
    tokenHash: hashToken(token),
    adminId,
    purpose,
    email,
    expiresAt: sql`now() + make_interval(secs => ${TOKEN_TTL[purpose]})`
  })
  return token
}

export interface TokenUse {
  adminId: string
  purpose: TokenPurpose
  email: string | null
}

/** Uses up a live token of one of the purposes; null when it is unknown, expired or used. */
export async function consumeAccountToken (tx: Db, token: string, purposes: TokenPurpose[]): Promise<TokenUse | null> {
  const [row] = await tx.update(accountTokens).set({ usedAt: sql`now()` })
    .where(and(live(token), inArray(accountTokens.purpose, purposes)))
    .returning({ adminId: accountTokens.adminId, purpose: accountTokens.purpose, email: accountTokens.email })
  return (row as TokenUse | undefined) ?? null
}

/** Voids every unused token of the purpose an admin holds (a newer one replaces them, or the password changed). */
export async function voidAccountTokens (tx: Db, adminId: string, purpose: TokenPurpose): Promise<void> {
  await tx.update(accountTokens).set({ usedAt: sql`now()` })
    .where(and(eq(accountTokens.adminId, adminId), eq(accountTokens.purpose, purpose), isNull(accountTokens.usedAt)))
}

/** Tokens of the purpose issued to the admin within the last hour. */
export async function recentTokenCount (db: Db, adminId: string, purpose: TokenPurpose): Promise<number> {
  const { rows } = await db.execute<{ n: number }>(sql`
    SELECT count(*)::int AS n FROM account_tokens
    WHERE admin_id = ${adminId} AND purpose = ${purpose} AND created_at > now() - interval '1 hour'`)
  return (rows[0] as { n: number }).n
}

function live (token: string) {
  return and(eq(accountTokens.tokenHash, hashToken(token)), isNull(accountTokens.usedAt), gt(accountTokens.expiresAt, sql`now()`))
}
