import { sql } from 'drizzle-orm'
import { pgTable, uuid, text, timestamp, boolean, integer, uniqueIndex, index } from 'drizzle-orm/pg-core'
import { admins } from './admins.ts'

export const users = pgTable('users', {
  id: uuid().primaryKey().default(sql`roster_uuid_v7()`),
  email: text().notNull(),
  name: text(),
  active: boolean().notNull().default(true),
  /** SCIM userName when it differs from the email (null: the email is the userName). Unique with the emails, case-insensitively. */
  userName: text(),
  /** SCIM externalId: the identity provider's id of the user (case-exact, unique). */
  externalId: text(),
  /** SCIM name.givenName and name.familyName. */
  givenName: text(),
  familyName: text(),
  /** Bumped on every update; the ETag is derived from id and version. */
  version: integer().notNull().default(1),
  createdBy: uuid().references(() => admins.id, { onDelete: 'set null' }),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow()
}, (t) => [
  uniqueIndex('users_email_lower_key').on(sql`lower(${t.email})`),
  index('users_created_at_id_idx').on(t.createdAt, t.id),
  index('users_email_id_idx').on(t.email, t.id),
  index('users_name_id_idx').on(sql`coalesce(${t.name}, '')`, t.id),
  index('users_created_by_idx').on(t.createdBy),
  // GET /users?q=: substring search of email and name (pg_trgm, created by migration 0004). Fast update
  // with a small pending list (1 MB, migration 0011): inserts append to it and it is merged in bulk, about
  // 3× cheaper than one entry at a time (a bulk import is PostgreSQL-bound); a search reads it in full, and
  // at 1 MB that is well under a millisecond. The default 4 MB would make every search read four times more.
  index('users_email_trgm_idx').using('gin', sql`lower(${t.email}) gin_trgm_ops`).with({ fastupdate: true, gin_pending_list_limit: 1024 }),
  index('users_name_trgm_idx').using('gin', sql`lower(coalesce(${t.name}, '')) gin_trgm_ops`).with({ fastupdate: true, gin_pending_list_limit: 1024 }),
  // SCIM (src/scim/query.ts): userName is coalesce(user_name, email); each filterable attribute has the index its operators need.
  uniqueIndex('users_user_name_lower_key').on(sql`lower(coalesce(${t.userName}, ${t.email}))`),
  uniqueIndex('users_external_id_key').on(t.externalId),
  // Substring filters on userName read the email's trigram index for users without a user_name and this one
  // for the few with one (migration 0012): an index on coalesce(user_name, email) repeated the email's
  // trigrams on every insert, a third of a bulk import's index work. Partial: no entries for missing values.
  index('users_user_name_trgm_idx').using('gin', sql`lower(${t.userName}) gin_trgm_ops`).where(sql`${t.userName} IS NOT NULL`).with({ fastupdate: true, gin_pending_list_limit: 1024 }),
  index('users_given_name_lower_idx').on(sql`lower(${t.givenName})`),
  index('users_family_name_lower_idx').on(sql`lower(${t.familyName})`),
  index('users_given_name_trgm_idx').using('gin', sql`lower(${t.givenName}) gin_trgm_ops`).where(sql`${t.givenName} IS NOT NULL`).with({ fastupdate: true, gin_pending_list_limit: 1024 }),
  index('users_family_name_trgm_idx').using('gin', sql`lower(${t.familyName}) gin_trgm_ops`).where(sql`${t.familyName} IS NOT NULL`).with({ fastupdate: true, gin_pending_list_limit: 1024 }),
  index('users_updated_at_id_idx').on(t.updatedAt, t.id)
])
