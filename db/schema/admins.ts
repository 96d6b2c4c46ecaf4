import { sql } from 'drizzle-orm'
import { pgTable, uuid, text, timestamp, bigint, uniqueIndex, index, check } from 'drizzle-orm/pg-core'

export const admins = pgTable('admins', {
  id: uuid().primaryKey().default(sql`gen_random_uuid()`),
  email: text().notNull(),
  name: text().notNull(),
  passwordHash: text().notNull(),
  confirmedAt: timestamp({ withTimezone: true, mode: 'date' }),
  /** A new address waiting for its confirmation link; the old one stays in force until then. */
  pendingEmail: text(),
  /** owner | admin | viewer (src/admins/permissions.ts); new rows viewer, the first confirmed admin owner. */
  role: text().notNull().default('viewer'),
  /** TOTP secret, AES-256-GCM under a key derived from SECRET_KEY (src/infra/secret-box.ts); set while enrolling or enrolled. */
  totpSecret: text(),
  /** When TOTP was activated; null while enrolling or without MFA. */
  totpEnabledAt: timestamp({ withTimezone: true, mode: 'date' }),
  /** The last accepted TOTP time step: a code is accepted once (no replay within its window). */
  totpLastStep: bigint({ mode: 'number' }),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow()
}, (t) => [
  uniqueIndex('admins_email_lower_key').on(sql`lower(${t.email})`),
  uniqueIndex('admins_name_lower_key').on(sql`lower(${t.name})`),
  index('admins_created_at_id_idx').on(t.createdAt, t.id),
  // GET /auth/admins?sort=email|name (keyset pages)
  index('admins_email_id_idx').on(t.email, t.id),
  index('admins_name_id_idx').on(t.name, t.id),
  check('admins_role_check', sql`${t.role} IN ('owner', 'admin', 'viewer')`)
])
