import { sql } from 'drizzle-orm'
import { pgTable, uuid, text, timestamp, integer, uniqueIndex, index, primaryKey } from 'drizzle-orm/pg-core'
import { admins } from './admins.ts'
import { users } from './users.ts'

/** Groups of users (REST /groups, SCIM /scim/v2/Groups). */
export const groups = pgTable('groups', {
  id: uuid().primaryKey().default(sql`roster_uuid_v7()`),
  displayName: text().notNull(),
  description: text(),
  /** SCIM externalId: the identity provider's id of the group (case-exact, unique). */
  externalId: text(),
  /** Bumped on every change, membership included; the ETag is derived from id and version. */
  version: integer().notNull().default(1),
  createdBy: uuid().references(() => admins.id, { onDelete: 'set null' }),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow()
}, (t) => [
  uniqueIndex('groups_display_name_lower_key').on(sql`lower(${t.displayName})`),
  uniqueIndex('groups_external_id_key').on(t.externalId),
  index('groups_created_at_id_idx').on(t.createdAt, t.id),
  index('groups_display_name_id_idx').on(sql`lower(${t.displayName})`, t.id),
  index('groups_updated_at_id_idx').on(t.updatedAt, t.id),
  index('groups_display_name_trgm_idx').using('gin', sql`lower(${t.displayName}) gin_trgm_ops`).with({ fastupdate: false })
])

/** Who is in which group; a user's or group's deletion removes its memberships. */
export const groupMembers = pgTable('group_members', {
  groupId: uuid().notNull().references(() => groups.id, { onDelete: 'cascade' }),
  userId: uuid().notNull().references(() => users.id, { onDelete: 'cascade' }),
  createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow()
}, (t) => [
  primaryKey({ columns: [t.groupId, t.userId] }),
  index('group_members_user_id_idx').on(t.userId, t.groupId)
])
