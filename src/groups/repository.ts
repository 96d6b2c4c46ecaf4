import type { Actor } from '../infra/actor.ts'
import type { Database, Queryable } from '../infra/database.ts'
import { createLister, CREATED_AT, type ListSpec, type Page, type PageQuery } from '../infra/paging/lister.ts'
import { iso, pageWhere, utc, type Where } from '../infra/sql.ts'
import type { GROUP_SORTS, GroupPatchBody, GroupRefRow, GroupRow, NewGroup } from '../../schemas/groups.ts'
import type { EventSql } from '../../schemas/webhooks.ts'

/** A webhook event's `data` from a row `r` of GROUP_COLUMNS: the group as `GET /groups/{id}` shows it. */
const GROUP_EVENT_DATA = "to_jsonb(r) - 'version' - 'externalId'"
/** A membership event's `data` from a row `r` of (id: the group, user_id). */
const MEMBERSHIP_EVENT_DATA = "jsonb_build_object('groupId', r.id, 'userId', r.user_id)"

/** A group as the API shows it; its instants by `at` (iso, or utc in a list). */
const columns = (at: (column: string) => string): string =>
  `id, display_name AS "displayName", description, external_id AS "externalId", version, created_by AS "createdBy", ${at('created_at')} AS "createdAt", ${at('updated_at')} AS "updatedAt"`
const GROUP_COLUMNS = columns(iso)

/** GET /groups. Every sort has its `(key, id)` index (db/schema/groups.ts); displayName uses the unique index on lower(display_name). */
export const GROUPS_LIST: ListSpec = {
  name: 'groups',
  columns: columns(utc),
  sorts: { createdAt: CREATED_AT, displayName: { expr: 'lower(display_name)', type: 'text' } } satisfies Record<typeof GROUP_SORTS[number], unknown>,
  defaultSort: 'createdAt',
  filters: {
    displayName: { sql: (p) => `lower(display_name) = lower(${p})` }
  }
}

/** A member as SCIM's Group.members shows it: the user's id and userName. */
export interface MemberRow { groupId: string, userId: string, display: string }

const GET = { name: 'groups_get', text: `SELECT ${GROUP_COLUMNS} FROM groups WHERE id = $1` }
const VERSION = { name: 'groups_version', text: 'SELECT version FROM groups WHERE id = $1' }
const LOCK = { name: 'groups_lock', text: 'SELECT version FROM groups WHERE id = $1 FOR UPDATE' }
const USER_GROUPS = {
  name: 'groups_of_user',
  text: 'SELECT g.id, g.display_name AS "displayName", m.user_id AS "userId" FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ANY($1::uuid[]) ORDER BY lower(g.display_name), g.id'
}
const MEMBERS = {
  name: 'groups_members',
  text: 'SELECT m.group_id AS "groupId", m.user_id AS "userId", coalesce(u.user_name, u.email) AS display FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ANY($1::uuid[]) ORDER BY m.created_at, m.user_id'
}
const MEMBER_IDS = { name: 'groups_member_ids', text: 'SELECT user_id AS "userId" FROM group_members WHERE group_id = $1' }

/**
 * The groups and group_members tables. Every write is one statement that also
 * records its audit rows (a data-modifying CTE, like src/users/repository.ts)
 * and bumps the versions its change shows in: a membership change bumps the
 * group's version (SCIM's Group shows its members) and the user's (GET
 * /users/{id} and SCIM's User show their groups), so their ETags change.
 * Each write records its webhook events in the same statement too (the
 * webhooks domain's `eventSql`): a membership event's resource is the group,
 * so the events of one group arrive in order.
 */
export function createGroupsRepository (db: Database, secretKey: string, auditInsert: string, eventSql: EventSql) {
  const pool: Queryable = db
  const lister = createLister<GroupRow>(GROUPS_LIST, secretKey)
  const audited = (name: string, event: 'group.created' | 'group.updated' | 'group.deleted', change: string, audit: string, extra = ''): { name: string, text: string } => {
    const { ctes, join } = eventSql(event, 'g', GROUP_EVENT_DATA)
    return { name, text: `WITH g AS (${change}), a AS (${auditInsert} SELECT ${audit} FROM g)${extra}, ${ctes} SELECT g.* FROM g ${join}` }
  }
  /** A membership statement: `m` the memberships added or removed, one audit row and one webhook event each. */
  const memberships = (name: string, event: 'membership.added' | 'membership.removed', change: string): { name: string, text: string } => {
    const { ctes, join } = eventSql(event, 'me', MEMBERSHIP_EVENT_DATA)
    const action = event === 'membership.added' ? 'membership.add' : 'membership.remove'
    return {
      name,
      text: `WITH m AS (${change} RETURNING group_id, user_id),
      g AS (UPDATE groups SET version = version + 1, updated_at = now() WHERE id = $1::uuid AND EXISTS (SELECT 1 FROM m)),
      u AS (UPDATE users SET version = version + 1, updated_at = now() WHERE id IN (SELECT user_id FROM m)),
      a AS (${auditInsert} SELECT $5::text, $3::uuid, '${action}', 'group', m.group_id, $4::text, jsonb_build_object('userId', m.user_id) FROM m),
      me AS (SELECT group_id AS id, user_id FROM m), ${ctes}
      SELECT me.user_id AS "userId" FROM me ${join}`
    }
  }
  const CREATE = audited('groups_create', 'group.created',
    `INSERT INTO groups (display_name, description, external_id, created_by) VALUES ($1::text, $2::text, $3::text, $4::uuid) RETURNING ${GROUP_COLUMNS}`,
    "$7::text, $8::uuid, 'group.create', 'group', g.id, $5::text, $6::jsonb")
  const UPDATE = audited('groups_update', 'group.updated', `UPDATE groups SET
      display_name = coalesce($2::text, display_name),
      description = CASE WHEN $3::boolean THEN $4::text ELSE description END,
      external_id = CASE WHEN $5::boolean THEN $6::text ELSE external_id END,
      version = version + 1,
      updated_at = now()
    WHERE id = $1::uuid AND ($7::int[] IS NULL OR version = ANY($7::int[]))
    RETURNING ${GROUP_COLUMNS}`, "$11::text, $8::uuid, 'group.update', 'group', g.id, $9::text, $10::jsonb")
  // The members' versions are bumped too: their groups change.
  const DELETE = audited('groups_delete', 'group.deleted',
    `DELETE FROM groups WHERE id = $1::uuid AND ($2::int[] IS NULL OR version = ANY($2::int[])) RETURNING ${GROUP_COLUMNS}`,
    "$5::text, $3::uuid, 'group.delete', 'group', g.id, $4::text, '{}'::jsonb",
    ', u AS (UPDATE users SET version = version + 1, updated_at = now() WHERE id IN (SELECT m.user_id FROM group_members m JOIN g ON g.id = m.group_id))')
  /** Adds users to a group (those already in it are left alone); an audit row and an event per membership added. */
  const ADD = memberships('groups_add_members', 'membership.added',
    'INSERT INTO group_members (group_id, user_id) SELECT $1::uuid, unnest($2::uuid[]) ON CONFLICT DO NOTHING')
  /** Removes users from a group (all of them when $2 is null); an audit row and an event per membership removed. */
  const REMOVE = memberships('groups_remove_members', 'membership.removed',
    'DELETE FROM group_members WHERE group_id = $1::uuid AND ($2::uuid[] IS NULL OR user_id = ANY($2::uuid[]))')
  const one = async (tx: Queryable, config: { name: string, text: string }, values: unknown[]): Promise<GroupRow | null> =>
    (await tx.query<GroupRow>({ ...config, values })).rows[0] ?? null

  return {
    lister,

    async get (id: string, tx: Queryable = pool): Promise<GroupRow | null> {
      return await one(tx, GET, [id])
    },

    /** The current version of a group, or null when there is none. */
    async version (id: string, tx: Queryable = pool): Promise<number | null> {
      return (await tx.query<{ version: number }>({ ...VERSION, values: [id] })).rows[0]?.version ?? null
    },

    /** The current version of a group, its row locked until the transaction ends; null when there is none. */
    async lock (id: string, tx: Queryable): Promise<number | null> {
      return (await tx.query<{ version: number }>({ ...LOCK, values: [id] })).rows[0]?.version ?? null
    },

    async list (query: PageQuery, tx: Queryable = pool): Promise<Page<GroupRow>> {
      return await lister.page(tx, query)
    },

    /** The groups matching a condition (a SCIM filter), a page by offset, and how many match. */
    async listWhere (where: Where, order: string, limit: number, offset: number): Promise<{ rows: GroupRow[], total: number }> {
      return await pageWhere<GroupRow>(pool, 'groups', GROUP_COLUMNS, where, order, limit, offset)
    },

    async create (group: NewGroup, actor: Actor, tx: Queryable = pool): Promise<GroupRow> {
      const values = { displayName: group.displayName, description: group.description ?? null, ...(group.externalId == null ? {} : { externalId: group.externalId }) }
      const createdBy = actor.type === 'admin' ? actor.id : null
      return await one(tx, CREATE, [values.displayName, values.description, group.externalId ?? null, createdBy, actor.requestId, JSON.stringify(values), actor.type, actor.id]) as GroupRow
    },

    /** Applies a patch when the group exists and (versions given) is at one of those versions; null otherwise. */
    async update (id: string, patch: GroupPatchBody, versions: number[] | null, actor: Actor, tx: Queryable = pool): Promise<GroupRow | null> {
      return await one(tx, UPDATE, [
        id, patch.displayName ?? null, patch.description !== undefined, patch.description ?? null, patch.externalId !== undefined, patch.externalId ?? null,
        versions, actor.id, actor.requestId, JSON.stringify(patch), actor.type
      ])
    },

    /** Deletes a group (its memberships with it) when it exists and (versions given) is at one of those versions; the deleted row or null. */
    async remove (id: string, versions: number[] | null, actor: Actor, tx: Queryable = pool): Promise<GroupRow | null> {
      return await one(tx, DELETE, [id, versions, actor.id, actor.requestId, actor.type])
    },

    /** Adds users to a group; answers the ids actually added (not those already in it). */
    async addMembers (groupId: string, userIds: string[], actor: Actor, tx: Queryable = pool): Promise<string[]> {
      const { rows } = await tx.query<{ userId: string }>({ ...ADD, values: [groupId, userIds, actor.id, actor.requestId, actor.type] })
      return rows.map((r) => r.userId)
    },

    /** Removes users from a group (null: every member); answers the ids actually removed. */
    async removeMembers (groupId: string, userIds: string[] | null, actor: Actor, tx: Queryable = pool): Promise<string[]> {
      const { rows } = await tx.query<{ userId: string }>({ ...REMOVE, values: [groupId, userIds, actor.id, actor.requestId, actor.type] })
      return rows.map((r) => r.userId)
    },

    /** The groups of some users, by name. */
    async groupsOf (userIds: string[], tx: Queryable = pool): Promise<Array<GroupRefRow & { userId: string }>> {
      return (await tx.query<GroupRefRow & { userId: string }>({ ...USER_GROUPS, values: [userIds] })).rows
    },

    /** The members of some groups, with their userNames. */
    async membersOf (groupIds: string[], tx: Queryable = pool): Promise<MemberRow[]> {
      return (await tx.query<MemberRow>({ ...MEMBERS, values: [groupIds] })).rows
    },

    async memberIds (groupId: string, tx: Queryable = pool): Promise<string[]> {
      return (await tx.query<{ userId: string }>({ ...MEMBER_IDS, values: [groupId] })).rows.map((r) => r.userId)
    }
  }
}

export type GroupsRepository = ReturnType<typeof createGroupsRepository>
