import { sql } from 'drizzle-orm'
import { pgTable, uuid, text, timestamp, integer, index, primaryKey } from 'drizzle-orm/pg-core'
import { admins } from './admins.ts'

/** One row per login. Live while revoked_at is null and both expiries are in the future. */
export const sessions = pgTable('sessions', {
  id: uuid().primaryKey().default(sql`gen_random_uuid()`),
  adminId: uuid().notNull().references(() => admins.id, { onDelete: 'cascade' }),
  userAgent: text(),
  ip: text(),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  lastUsedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  idleExpiresAt: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
  expiresAt: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
  revokedAt: timestamp({ withTimezone: true, mode: 'date' }),
  revokedReason: text(),
  /** When the admin last proved who they are in this session (login, or a fresh code): the access token's auth_time. */
  authenticatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow()
}, (t) => [
  index('sessions_admin_id_idx').on(t.adminId)
])

/**
 * Every refresh token ever issued for a session, by SHA-256 hash. A token is
 * used once; presenting a used one again revokes its session (theft detection).
 */
export const refreshTokens = pgTable('refresh_tokens', {
  tokenHash: text().primaryKey(),
  sessionId: uuid().notNull().references(() => sessions.id, { onDelete: 'cascade' }),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  usedAt: timestamp({ withTimezone: true, mode: 'date' })
}, (t) => [
  index('refresh_tokens_session_id_idx').on(t.sessionId)
])

/** Single-use emailed tokens (confirm account, confirm new email, reset password), by SHA-256 hash. */
export const accountTokens = pgTable('account_tokens', {
  tokenHash: text().primaryKey(),
  adminId: uuid().notNull().references(() => admins.id, { onDelete: 'cascade' }),
  /** confirm_account | confirm_email | reset_password */
  purpose: text().notNull(),
  /** For confirm_email: the new address. */
  email: text(),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  expiresAt: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
  usedAt: timestamp({ withTimezone: true, mode: 'date' })
}, (t) => [
  index('account_tokens_admin_id_idx').on(t.adminId)
])

/**
 * Failed-login counters (src/sessions/throttle.ts), per normalised email
 * whether or not an account has it (so a lockout reveals nothing): one row per
 * email and client address (`client` the address, or its /64 for IPv6) locking
 * at LOCKOUT_THRESHOLD, and one account-wide row (`client = '*'`) locking at
 * LOCKOUT_ACCOUNT_THRESHOLD. Shared by all instances. `expires_at` is when the
 * row stops meaning anything (its window and its lock are both over): a row
 * past it may be deleted at any time.
 */
export const loginThrottle = pgTable('login_throttle', {
  email: text().notNull(),
  client: text().notNull(),
  /** Attempts counted in the window that did not succeed, those still being checked included. */
  failures: integer().notNull().default(0),
  windowStartedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  /** The latest attempt counted, and the instance that counted it: attempts older than the settling time are known to have failed. */
  lastAttemptAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  lastAttemptBy: text().notNull(),
  /** The latest attempt counted by another instance than `last_attempt_by`, if any. */
  otherAttemptAt: timestamp({ withTimezone: true, mode: 'date' }),
  lockedUntil: timestamp({ withTimezone: true, mode: 'date' }),
  expiresAt: timestamp({ withTimezone: true, mode: 'date' }).notNull()
}, (t) => [
  primaryKey({ columns: [t.email, t.client] }),
  index('login_throttle_expires_at_idx').on(t.expiresAt)
])

/**
 * The access-token signing keys of every instance on this database, by kid:
 * recorded at start and refreshed every minute by each instance holding them
 * (as its signing key or as a previous key). The JWKS and every instance's
 * verification use the keys seen within ACCESS_TOKEN_TTL (src/sessions/keyring.ts).
 */
export const signingKeys = pgTable('signing_keys', {
  kid: text().primaryKey(),
  /** SPKI PEM of the Ed25519 public key. */
  publicKey: text().notNull(),
  /** The `iss` of the last instance that signed with this key; null while none has. */
  issuer: text(),
  firstSeenAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  /** Last time an instance held the key (signing or previous). */
  lastSeenAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  /** Last time an instance signed with it. */
  lastSignedAt: timestamp({ withTimezone: true, mode: 'date' })
})
