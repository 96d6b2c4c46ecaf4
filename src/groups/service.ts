import type { GroupPatchBody, GroupRow, NewGroup } from '../../schemas/groups.ts'
import type { AuditService } from '../audit/service.ts'
import type { Actor } from '../infra/actor.ts'
import { transaction, violations, type Database, type Queryable } from '../infra/database.ts'
import { errors } from '../infra/errors.ts'
import type { Page, PageQuery } from '../infra/paging/lister.ts'
import { groupsErrors } from './errors.ts'
import type { WebhooksService } from '../webhooks/service.ts'
import { createGroupsRepository } from './repository.ts'

/** Unique and foreign-key violations of a group write, as the errors they mean. */
const writeError = violations({
  groups_display_name_lower_key: () => new groupsErrors.DisplayNameTaken(),
  groups_external_id_key: () => new groupsErrors.ExternalIdTaken(),
  groups_created_by_admins_id_fk: () => new errors.Unauthorized('The admin of this access token no longer exists')
})

/** A group's attributes and members as a change (SCIM's PUT and PATCH) wants them. */
export interface GroupState {
  displayName: string
  externalId: string | null
  /** Every member, by user id. */
  members: string[]
}

/**
 * The groups resource: the repository's statements plus what HTTP needs
 * around them (404 vs 412, conflicts). A membership change names a user that
 * must exist (404 ROSTER_NO_SUCH_MEMBER otherwise).
 */
export function createGroupsService (db: Database, secretKey: string, audit: Pick<AuditService, 'insertSql'>, webhooks: Pick<WebhooksService, 'eventSql'>) {
  const repository = createGroupsRepository(db, secretKey, audit.insertSql, webhooks.eventSql)

  async function missingOrStale (id: string): Promise<never> {
    if (await repository.version(id) === null) throw new errors.NotFound(`No group with id ${id}`)
    throw new errors.PreconditionFailed('The group has changed since the ETag given in If-Match: GET it again and retry with its new ETag')
  }

  /** Runs a write, mapping constraint violations. */
  async function write<T> (fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw violations({ group_members_user_id_users_id_fk: () => new groupsErrors.NoSuchMember('members: a user named as a member does not exist') })(writeError(err))
    }
  }

  const unique = (ids: string[]): string[] => [...new Set(ids.map((id) => id.toLowerCase()))]

  return {
    repository,

    get: async (id: string): Promise<GroupRow | null> => await repository.get(id),

    list: async (query: PageQuery): Promise<Page<GroupRow>> => await repository.list(query),

    async create (group: NewGroup, actor: Actor, members: string[] = []): Promise<GroupRow> {
      return await write(async () => await transaction(db, async (tx) => {
        const row = await repository.create(group, actor, tx)
        if (members.length === 0) return row
        await repository.addMembers(row.id, unique(members), actor, tx)
        return await repository.get(row.id, tx) as GroupRow
      }))
    },

    async update (id: string, patch: GroupPatchBody, versions: number[] | null, actor: Actor): Promise<GroupRow> {
      return await write(async () => await repository.update(id, patch, versions, actor)) ?? await missingOrStale(id)
    },

    /**
     * A change computed from the group as it is (SCIM's PUT and PATCH), under
     * its row lock: `changes` answers the new state (attributes and the full
     * list of members), written as an update and the memberships removed and
     * added. 404 / 412 as for update; answers the group as it is afterwards.
     */
    async change (id: string, versions: number[] | null, actor: Actor, changes: (current: GroupRow, members: string[]) => GroupState): Promise<GroupRow> {
      return await write(async () => await transaction(db, async (tx: Queryable) => {
        const version = await repository.lock(id, tx)
        if (version === null || (versions !== null && !versions.includes(version))) return null
        const current = await repository.get(id, tx) as GroupRow
        const members = await repository.memberIds(id, tx)
        const next = changes(current, members)
        const patch: GroupPatchBody = {}
        if (next.displayName !== current.displayName) patch.displayName = next.displayName
        if (next.externalId !== current.externalId) patch.externalId = next.externalId
        if (Object.keys(patch).length > 0) await repository.update(id, patch, null, actor, tx)
        const wanted = unique(next.members)
        const gone = members.filter((m) => !wanted.includes(m))
        if (gone.length > 0) await repository.removeMembers(id, gone, actor, tx)
        const added = wanted.filter((m) => !members.includes(m))
        if (added.length > 0) await repository.addMembers(id, added, actor, tx)
        return await repository.get(id, tx)
      })) ?? await missingOrStale(id)
    },

    async remove (id: string, versions: number[] | null, actor: Actor): Promise<GroupRow> {
      return await repository.remove(id, versions, actor) ?? await missingOrStale(id)
    },

    /** PUT /groups/{id}/members/{userId}: true when added, false when the user already was a member. */
    async addMember (id: string, userId: string, actor: Actor): Promise<boolean> {
      try {
        return (await repository.addMembers(id, [userId], actor)).length > 0
      } catch (err) {
        throw violations({
          group_members_group_id_groups_id_fk: () => new errors.NotFound(`No group with id ${id}`),
          group_members_user_id_users_id_fk: () => new groupsErrors.NoSuchMember(`No user with id ${userId}`)
        })(err)
      }
    },

    /** DELETE /groups/{id}/members/{userId}: 404 when the group does not exist or the user is not in it. */
    async removeMember (id: string, userId: string, actor: Actor): Promise<void> {
      if ((await repository.removeMembers(id, [userId], actor)).length > 0) return
      if (await repository.version(id) === null) throw new errors.NotFound(`No group with id ${id}`)
      throw new errors.NotFound(`User ${userId} is not a member of group ${id}`)
    },

    groupsOf: repository.groupsOf,
    membersOf: repository.membersOf
  }
}

export type GroupsService = ReturnType<typeof createGroupsService>
