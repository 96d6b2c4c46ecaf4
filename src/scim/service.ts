import type { GroupRow } from '../../schemas/groups.ts'
import type { UserRow } from '../../schemas/users.ts'
import type { GroupsService } from '../groups/service.ts'
import type { Actor } from '../infra/actor.ts'
import { errors } from '../infra/errors.ts'
import type { UsersService } from '../users/service.ts'
import { parseFilter } from './filter.ts'
import { compileFilter, GROUP_ATTRIBUTES, orderBy, SqlParams, USER_ATTRIBUTES, type ResourceAttributes } from './query.ts'
import { groupFromBody, newUser, patchGroup, patchOperations, patchUser, project, replaceUser, SCHEMAS, toScimGroup, toScimUser, type ScimGroup, type ScimUser } from './resources.ts'

export interface ScimListQuery {
  filter?: string | undefined
  sortBy?: string | undefined
  sortOrder?: 'ascending' | 'descending' | undefined
  /** 1-based; below 1 means 1. */
  startIndex?: number | undefined
  /** Resources per page: 0 answers only totalResults; at most MAX_COUNT. */
  count?: number | undefined
  attributes?: string | undefined
  excludedAttributes?: string | undefined
}

/** The largest page (ServiceProviderConfig's filter.maxResults) and the default one. */
export const MAX_COUNT = 200
export const DEFAULT_COUNT = 100

export interface ListResponse<R> {
  schemas: string[]
  totalResults: number
  startIndex: number
  itemsPerPage: number
  Resources: R[]
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const list = (value: string | undefined): string[] | null => value === undefined ? null : value.split(',').filter((a) => a.trim() !== '')

/**
 * SCIM 2.0 (RFC 7643, 7644) over the users and groups services: every change
 * goes through them, so it is audited (and announced) exactly as a REST
 * change. `base` is the public URL of /scim/v2, for `meta.location`.
 */
export function createScimService (users: UsersService, groups: GroupsService, base: string) {
  async function userOut (row: UserRow): Promise<ScimUser> {
    return toScimUser(base, row, await groups.groupsOf([row.id]))
  }

  async function groupOut (row: GroupRow, withMembers = true): Promise<ScimGroup> {
    return toScimGroup(base, row, withMembers ? await groups.membersOf([row.id]) : null)
  }

  const notFound = (kind: string, id: string): Error => new errors.NotFound(`No ${kind} with id ${id}`)

  function where (resource: ResourceAttributes, query: ScimListQuery): { where: { text: string, values: unknown[] }, order: string, limit: number, offset: number, startIndex: number } {
    const params = new SqlParams()
    const text = query.filter === undefined ? 'true' : compileFilter(resource, parseFilter(query.filter), params)
    const startIndex = Math.max(1, query.startIndex ?? 1)
    const limit = Math.min(MAX_COUNT, Math.max(0, query.count ?? DEFAULT_COUNT))
    return { where: { text, values: params.values }, order: orderBy(resource, query.sortBy, query.sortOrder), limit, offset: startIndex - 1, startIndex }
  }

  function respond<R> (resources: R[], total: number, startIndex: number): ListResponse<R> {
    return { schemas: [SCHEMAS.list], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources }
  }

  /** Whether a projection leaves `attr` out (then it is not even read). */
  function excludes (query: ScimListQuery, attr: string): boolean {
    const wanted = list(query.attributes)
    if (wanted !== null) return !wanted.some((a) => a.trim().toLowerCase().replace(/^urn:.*:/, '').split('.')[0] === attr)
    return (list(query.excludedAttributes) ?? []).some((a) => a.trim().toLowerCase().replace(/^urn:.*:/, '') === attr)
  }

  return {
    async listUsers (query: ScimListQuery): Promise<ListResponse<Partial<ScimUser>>> {
      const q = where(USER_ATTRIBUTES, query)
      const { rows, total } = await users.repository.listWhere(q.where, q.order, q.limit, q.offset)
      const memberships = rows.length === 0 || excludes(query, 'groups') ? [] : await groups.groupsOf(rows.map((r) => r.id))
      const resources = rows.map((r) => project(toScimUser(base, r, memberships.filter((m) => m.userId === r.id)), SCHEMAS.user, list(query.attributes), list(query.excludedAttributes)))
      return respond(resources, total, q.startIndex)
    },

    async getUser (id: string): Promise<ScimUser> {
      const row = UUID.test(id) ? await users.get(id) : null
      if (row === null) throw notFound('user', id)
      return await userOut(row)
    },

    async createUser (body: unknown, actor: Actor): Promise<ScimUser> {
      return await userOut(await users.create(newUser(body), actor))
    },

    async replaceUser (id: string, body: unknown, versions: number[] | null, actor: Actor): Promise<ScimUser> {
      if (!UUID.test(id)) throw notFound('user', id)
      return await userOut(await users.change(id, versions, actor, (current) => replaceUser(current, body)))
    },

    async patchUser (id: string, body: unknown, versions: number[] | null, actor: Actor): Promise<ScimUser> {
      const ops = patchOperations(body)
      if (!UUID.test(id)) throw notFound('user', id)
      return await userOut(await users.change(id, versions, actor, (current) => patchUser(current, ops)))
    },

    async deleteUser (id: string, versions: number[] | null, actor: Actor): Promise<void> {
      if (!UUID.test(id)) throw notFound('user', id)
      await users.remove(id, versions, actor)
    },

    async listGroups (query: ScimListQuery): Promise<ListResponse<Partial<ScimGroup>>> {
      const q = where(GROUP_ATTRIBUTES, query)
      const { rows, total } = await groups.repository.listWhere(q.where, q.order, q.limit, q.offset)
      const members = rows.length === 0 || excludes(query, 'members') ? null : await groups.membersOf(rows.map((r) => r.id))
      const resources = rows.map((r) => project(toScimGroup(base, r, members === null ? null : members.filter((m) => m.groupId === r.id)), SCHEMAS.group, list(query.attributes), list(query.excludedAttributes)))
      return respond(resources, total, q.startIndex)
    },

    async getGroup (id: string, query: Pick<ScimListQuery, 'attributes' | 'excludedAttributes'> = {}): Promise<Partial<ScimGroup>> {
      const row = UUID.test(id) ? await groups.get(id) : null
      if (row === null) throw notFound('group', id)
      return project(await groupOut(row, !excludes(query, 'members')), SCHEMAS.group, list(query.attributes), list(query.excludedAttributes))
    },

    async createGroup (body: unknown, actor: Actor): Promise<ScimGroup> {
      const state = groupFromBody(body, null)
      return await groupOut(await groups.create({ displayName: state.displayName, externalId: state.externalId }, actor, state.members))
    },

    async replaceGroup (id: string, body: unknown, versions: number[] | null, actor: Actor): Promise<ScimGroup> {
      const state = groupFromBody(body, id)
      if (!UUID.test(id)) throw notFound('group', id)
      return await groupOut(await groups.change(id, versions, actor, () => state))
    },

    /** Answers the group's row only (its new version): a PATCH of a group answers 204, without the members. */
    async patchGroup (id: string, body: unknown, versions: number[] | null, actor: Actor): Promise<GroupRow> {
      const ops = patchOperations(body)
      if (!UUID.test(id)) throw notFound('group', id)
      return await groups.change(id, versions, actor, (current, members) => patchGroup(current, members, ops))
    },

    async deleteGroup (id: string, versions: number[] | null, actor: Actor): Promise<void> {
      if (!UUID.test(id)) throw notFound('group', id)
      await groups.remove(id, versions, actor)
    }
  }
}

export type ScimService = ReturnType<typeof createScimService>
