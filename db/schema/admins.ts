import { sql } from 'drizzle-orm'
import { pgTable, uuid, text, timestamp, uniqueIndex, index } from 'drizzle-orm/pg-core'

export const admins = pgTable('admins', {
  id: uuid().primaryKey().default(sql`gen_random_uuid()`),
  email: text().notNull(),
  name: text().notNull(),
  passwordHash: text().notNull(),
  confirmedAt: timestamp({ withTimezone: true, mode: 'date' }),
  /** A new address waiting for its confirmation link; the old one stays in force until then. */
  pendingEmail: text(),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow()
}, (t) => [
  uniqueIndex('admins_email_lower_key').on(sql`lower(${t.email})`),
  uniqueIndex('admins_name_lower_key').on(sql`lower(${t.name})`),
  index('admins_created_at_id_idx').on(t.createdAt, t.id),
  // GET /auth/admins?sort=email|name (keyset pages)
  index('admins_email_id_idx').on(t.email, t.id),
  index('admins_name_id_idx').on(t.name, t.id)
])
