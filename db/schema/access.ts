import { sql } from 'drizzle-orm'
import { pgTable, uuid, text, timestamp, index, uniqueIndex } from 'drizzle-orm/pg-core'
import { admins } from './admins.ts'

/** Ten single-use recovery codes per admin with TOTP, by SHA-256 hash (80 random bits each). */
export const mfaRecoveryCodes = pgTable('mfa_recovery_codes', {
  codeHash: text().primaryKey(),
  adminId: uuid().notNull().references(() => admins.id, { onDelete: 'cascade' }),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  usedAt: timestamp({ withTimezone: true, mode: 'date' })
}, (t) => [
  index('mfa_recovery_codes_admin_id_idx').on(t.adminId)
])

/** The jti of every mfa_token that completed a login, until it expires: an mfa_token is single use. */
export const mfaTokenUses = pgTable('mfa_token_uses', {
  jti: uuid().primaryKey(),
  expiresAt: timestamp({ withTimezone: true, mode: 'date' }).notNull()
}, (t) => [
  index('mfa_token_uses_expires_at_idx').on(t.expiresAt)
])

/** Emailed invitations to become an admin with a role: single use, 72 h, the token stored as SHA-256 only. */
export const invitations = pgTable('invitations', {
  id: uuid().primaryKey().default(sql`gen_random_uuid()`),
  email: text().notNull(),
  role: text().notNull(),
  tokenHash: text().notNull(),
  /** The owner who invited; null once that admin is deleted. */
  invitedBy: uuid().references(() => admins.id, { onDelete: 'set null' }),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  expiresAt: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
  acceptedAt: timestamp({ withTimezone: true, mode: 'date' }),
  revokedAt: timestamp({ withTimezone: true, mode: 'date' })
}, (t) => [
  uniqueIndex('invitations_token_hash_key').on(t.tokenHash),
  index('invitations_created_at_idx').on(t.createdAt)
])

/** API clients (OAuth 2.0 client credentials): machines calling the API with scopes. */
export const apiClients = pgTable('api_clients', {
  id: uuid().primaryKey().default(sql`gen_random_uuid()`),
  name: text().notNull(),
  /** users:read | users:write | audit:read | scim */
  scopes: text().array().notNull(),
  createdBy: uuid().references(() => admins.id, { onDelete: 'set null' }),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow()
}, (t) => [
  index('api_clients_created_at_idx').on(t.createdAt)
])

/** A client's secrets (two at most, for rotation), by SHA-256 of 32 random bytes. */
export const apiClientSecrets = pgTable('api_client_secrets', {
  id: uuid().primaryKey().default(sql`gen_random_uuid()`),
  clientId: uuid().notNull().references(() => apiClients.id, { onDelete: 'cascade' }),
  secretHash: text().notNull(),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  lastUsedAt: timestamp({ withTimezone: true, mode: 'date' })
}, (t) => [
  uniqueIndex('api_client_secrets_secret_hash_key').on(t.secretHash),
  index('api_client_secrets_client_id_idx').on(t.clientId)
])
