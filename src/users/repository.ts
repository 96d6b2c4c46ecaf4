import type { Actor } from '../infra/actor.ts'
import type { Database, Queryable } from '../infra/database.ts'
import { createLister, CREATED_AT, textSort, type ListSpec, type Page, type PageQuery } from '../infra/paging/lister.ts'
import { containsPattern, instants, iso, pageWhere, utc, type Where } from '../infra/sql.ts'
import type { GroupRefRow } from '../../schemas/groups.ts'
import type { NewUser, USER_SORTS, UserPatchBody, UserRow } from '../../schemas/users.ts'
import type { EventSql } from '../../schemas/webhooks.ts'

/** A user as the REST API shows it (and the export writes it), with `version` for its ETag; its instants by `at` (iso, or utc for many rows). */
const columns = (at: (column: string) => string): string =>
  `id, email, name, active, version, created_by AS "createdBy", ${at('created_at')} AS "createdAt", ${at('updated_at')} AS "updatedAt"`
const COLUMNS = columns(iso)
/** The users of a list's page or an export's batch (`types: instants`). */
const LIST_COLUMNS = columns(utc)
/** The SCIM attributes besides: SCIM shows them, the REST API does not. */
const SCIM_KEYS = ['userName', 'externalId', 'givenName', 'familyName']
const USER_COLUMNS = `${COLUMNS}, user_name AS "userName", external_id AS "externalId", given_name AS "givenName", family_name AS "familyName"`
/** A webhook event's `data` from a row `r` of USER_COLUMNS: the user as `GET /users/{id}` shows it (no version, no SCIM attributes). */
const USER_EVENT_DATA = `to_jsonb(r) - 'version' - ${SCIM_KEYS.map((k) => `'${k}'`).join(' - ')}`

/**
 * GET /users. Every sort has its `(key, id)` index (db/schema/users.ts); `email`
 * uses the unique index on lower(email); `q` is a search filter (src/infra/paging)
 * answered by a window of the sort index or by the pg_trgm GIN indexes on
 * lower(email) and lower(coalesce(name, '')), whichever the statistics of email
 * and name say is cheaper for the term.
 */
export const USERS_LIST: ListSpec = {
  name: 'users',
  // The REST user only: SCIM's attributes are read by SCIM's own listing (pageWhere below).
  columns: LIST_COLUMNS,
  sorts: { createdAt: CREATED_AT, email: textSort('email'), name: textSort("coalesce(name, '')") } satisfies Record<typeof USER_SORTS[number], unknown>,
  defaultSort: 'createdAt',
  filters: {
    email: { sql: (p) => `lower(email) = lower(${p})` },
    q: {
      // Lowercased here, not by lower($1) in SQL: a generic plan would compute that again for every row.
      sql: (p) => `(lower(email) LIKE ${p} OR lower(coalesce(name, '')) LIKE ${p})`,
      param: (v) => containsPattern((v as string).toLowerCase()),
      search: {
        // users_search (migration 0004): the users matching a pattern, from the trigram indexes, never by a sequential scan.
        from: (p) => `users_search(${p}) AS users`,
        columns: ['email', 'name'],
        term: (v) => (v as string).toLowerCase(),
        clusters: ['email', 'name']
      }
    },
    active: { sql: (p) => `active = ${p}` },
    // group_members_user_id_idx: (user_id, group_id).
    group: { sql: (p) => `EXISTS (SELECT 1 FROM group_members m WHERE m.user_id = users.id AND m.group_id = ${p}::uuid)` },
    createdAfter: { sql: (p) => `created_at >= ${p}::timestamptz` },
    createdBefore: { sql: (p) => `created_at < ${p}::timestamptz` }
  }
}

const GET = { name: 'users_get', text: `SELECT ${USER_COLUMNS} FROM users WHERE id = $1` }
/** GET /users/{id}: the user and its groups by name (group_members_user_id_idx), in one round trip. */
const GET_WITH_GROUPS = {
  name: 'users_get_with_groups',
  text: `SELECT ${USER_COLUMNS}, coalesce((SELECT json_agg(json_build_object('id', g.id, 'displayName', g.display_name) ORDER BY lower(g.display_name), g.id)
      FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = users.id), '[]') AS groups
    FROM users WHERE id = $1`
}
const VERSION = { name: 'users_version', text: 'SELECT version FROM users WHERE id = $1' }
const LOCK = { name: 'users_lock', text: `SELECT ${USER_COLUMNS} FROM users WHERE id = $1 FOR UPDATE` }
/**
 * The users table. Every function is one SQL statement, a named prepared
 * statement (parsed and planned once per connection), run on the pool or on
 * the transaction `tx` the caller opened. Writes record their audit event in
 * the same statement.
 */
export function createUsersRepository (db: Database, secretKey: string, auditInsert: string, eventSql: EventSql) {
  const pool: Queryable = db
  const lister = createLister<UserRow>(USERS_LIST, secretKey, db)
  // Each write is one statement: the change and its audit row (a data-modifying CTE), so both commit or neither.
  // Built once, when the app starts: the audit row's INSERT is the audit domain's (src/audit/repository.ts).
  // The webhook event is the webhooks domain's (src/webhooks/repository.ts): its outbox rows from `u`, the user as the API shows it.
  /** One statement: the change (CTE `u`, returning the user), its audit row and its webhook event from `u`, so all commit or neither. */
  const audited = (name: string, event: 'user.created' | 'user.updated' | 'user.deleted', change: string, audit: string): { name: string, text: string } => {
    const { ctes, join } = eventSql(event, 'u', USER_EVENT_DATA)
    return { name, text: `WITH u AS (${change}), a AS (${auditInsert} SELECT ${audit} FROM u), ${ctes} SELECT u.* FROM u ${join}` }
  }
  const CREATE = audited('users_create', 'user.created',
    `INSERT INTO users (email, name, active, created_by, user_name, external_id, given_name, family_name)
      VALUES ($1::text, $2::text, $3::boolean, $4::uuid, $9::text, $10::text, $11::text, $12::text) RETURNING ${USER_COLUMNS}`,
    "$7::text, $8::uuid, 'user.create', 'user', u.id, $5::text, $6::jsonb")
  const UPDATE = audited('users_update', 'user.updated', `UPDATE users SET
      email = coalesce($2::text, email),
      name = CASE WHEN $3::boolean THEN $4::text ELSE name END,
      active = coalesce($5::boolean, active),
      user_name = CASE WHEN $11::boolean THEN $12::text ELSE user_name END,
      external_id = CASE WHEN $13::boolean THEN $14::text ELSE external_id END,
      given_name = CASE WHEN $15::boolean THEN $16::text ELSE given_name END,
      family_name = CASE WHEN $17::boolean THEN $18::text ELSE family_name END,
      version = version + 1,
      updated_at = now()
    WHERE id = $1::uuid AND ($6::int[] IS NULL OR version = ANY($6::int[]))
    RETURNING ${USER_COLUMNS}`, "$10::text, $7::uuid, 'user.update', 'user', u.id, $8::text, $9::jsonb")
  const DELETE = audited('users_delete', 'user.deleted',
    `DELETE FROM users WHERE id = $1::uuid AND ($2::int[] IS NULL OR version = ANY($2::int[])) RETURNING ${USER_COLUMNS}`,
    "$5::text, $3::uuid, 'user.delete', 'user', u.id, $4::text, '{}'::jsonb")
  /**
   * A batch of an import, one statement: the users (a row whose email is taken,
   * by an existing user or an earlier row, is skipped: ON CONFLICT DO NOTHING),
   * an audit row and a webhook event for each user created. Answers the
   * lower-cased emails of the users created.
   */
  const IMPORT = (() => {
    const { ctes, join } = eventSql('user.created', 'u', USER_EVENT_DATA)
    return {
      name: 'users_import_batch',
      text: `WITH input AS (
          SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[], $4::int[]) AS t(email, name, active, line)
        ), u AS (
          INSERT INTO users (email, name, active, created_by) SELECT email, name, active, $5::uuid FROM input ORDER BY line
          ON CONFLICT ((lower(email))) DO NOTHING RETURNING ${COLUMNS}
        ), a AS (
          ${auditInsert} SELECT $6::text, $7::uuid, 'user.create', 'user', u.id, $8::text,
            jsonb_build_object('email', u.email, 'name', u.name, 'active', u.active, 'importId', $9::text) FROM u
        ), ${ctes}
        SELECT lower(u.email) AS key FROM u ${join}`
    }
  })()
  /** A page of the export: every user, by creation time and id (the index users_created_at_id_idx). */
  const EXPORT_PAGE = {
    name: 'users_export_page',
    text: `SELECT ${LIST_COLUMNS}, created_at::text AS _k FROM users
      WHERE $1::text IS NULL OR (created_at, id) > ($1::timestamptz, $2::uuid) ORDER BY created_at, id LIMIT $3`,
    types: instants
  }
  const one = async (tx: Queryable, config: { name: string, text: string }, values: unknown[]): Promise<UserRow | null> =>
    (await tx.query<UserRow>({ ...config, values })).rows[0] ?? null

  return {
    lister,

    async get (id: string, tx: Queryable = pool): Promise<UserRow | null> {
      return await one(tx, GET, [id])
    },

    /** A user with its groups (`[{id, displayName}]`, by name); null when there is none. */
    async getWithGroups (id: string): Promise<(UserRow & { groups: GroupRefRow[] }) | null> {
      return (await pool.query<UserRow & { groups: GroupRefRow[] }>({ ...GET_WITH_GROUPS, values: [id] })).rows[0] ?? null
    },

    /** A user, its row locked until the transaction `tx` ends; null when there is none. */
    async lock (id: string, tx: Queryable): Promise<UserRow | null> {
      return await one(tx, LOCK, [id])
    },

    /** The current version of a user, or null when there is none. */
    async version (id: string, tx: Queryable = pool): Promise<number | null> {
      return (await tx.query<{ version: number }>({ ...VERSION, values: [id] })).rows[0]?.version ?? null
    },

    async list (query: PageQuery, tx: Queryable = pool): Promise<Page<UserRow>> {
      return await lister.page(tx, query)
    },

    /** The users matching a condition (a SCIM filter), a page by offset, and how many match. */
    async listWhere (where: Where, order: string, limit: number, offset: number): Promise<{ rows: UserRow[], total: number }> {
      return await pageWhere<UserRow>(pool, 'users', USER_COLUMNS, where, order, limit, offset)
    },

    async create (user: NewUser, actor: Actor, tx: Queryable = pool): Promise<UserRow> {
      const scim = { userName: user.userName ?? null, externalId: user.externalId ?? null, givenName: user.givenName ?? null, familyName: user.familyName ?? null }
      // The audit event names the SCIM attributes that were given.
      const values = { email: user.email, name: user.name ?? null, active: user.active ?? true, ...Object.fromEntries(Object.entries(scim).filter(([, v]) => v !== null)) }
      // createdBy names an admin; a user created by an API client has none (the audit event names the client).
      const createdBy = actor.type === 'admin' ? actor.id : null
      return await one(tx, CREATE, [
        values.email, values.name, values.active, createdBy, actor.requestId, JSON.stringify(values), actor.type, actor.id,
        scim.userName, scim.externalId, scim.givenName, scim.familyName
      ]) as UserRow
    },

    /** Applies a patch when the user exists and (versions given) is at one of those versions; null otherwise. */
    async update (id: string, patch: UserPatchBody, versions: number[] | null, actor: Actor, tx: Queryable = pool): Promise<UserRow | null> {
      return await one(tx, UPDATE, [
        id, patch.email ?? null, patch.name !== undefined, patch.name ?? null, patch.active ?? null, versions,
        actor.id, actor.requestId, JSON.stringify(patch), actor.type,
        patch.userName !== undefined, patch.userName ?? null, patch.externalId !== undefined, patch.externalId ?? null,
        patch.givenName !== undefined, patch.givenName ?? null, patch.familyName !== undefined, patch.familyName ?? null
      ])
    },

    /** Inserts a batch of imported users in the caller's transaction; answers the lower-cased emails of those created. */
    async importBatch (tx: Queryable, rows: ReadonlyArray<{ email: string, name: string | null, active: boolean, line: number }>, actor: Actor, importId: string): Promise<Set<string>> {
      const createdBy = actor.type === 'admin' ? actor.id : null
      const { rows: created } = await tx.query<{ key: string }>({
        ...IMPORT,
        values: [rows.map((r) => r.email), rows.map((r) => r.name), rows.map((r) => r.active), rows.map((r) => r.line), createdBy, actor.type, actor.id, actor.requestId, importId]
      })
      return new Set(created.map((r) => r.key))
    },

    /** One page of the export after `after` (null: from the start), read in the caller's (snapshot) transaction. */
    async exportPage (tx: Queryable, after: { key: string, id: string } | null, limit: number): Promise<Array<UserRow & { _k: string }>> {
      return (await tx.query<UserRow & { _k: string }>({ ...EXPORT_PAGE, values: [after?.key ?? null, after?.id ?? null, limit] })).rows
    },

    /** Deletes a user when it exists and (versions given) is at one of those versions; answers the deleted row or null. */
    async remove (id: string, versions: number[] | null, actor: Actor, tx: Queryable = pool): Promise<UserRow | null> {
      return await one(tx, DELETE, [id, versions, actor.id, actor.requestId, actor.type])
    }
  }
}

export type UsersRepository = ReturnType<typeof createUsersRepository>
