import type { NewUser, UserPatchBody, UserRow } from '../../schemas/users.ts'
import type { AuditService } from '../audit/service.ts'
import type { WebhooksService } from '../webhooks/service.ts'
import type { Actor } from '../infra/actor.ts'
import { transaction, violations, type Database } from '../infra/database.ts'
import { errors } from '../infra/errors.ts'
import { createIdempotencyRepository, type StoredResponse } from '../infra/idempotency.ts'
import type { Page, PageQuery } from '../infra/paging/lister.ts'
import { usersErrors } from './errors.ts'
import { createUsersRepository } from './repository.ts'
import { createTransfer } from './transfer.ts'

export interface CreateResult extends StoredResponse {
  /** True when this is the stored first response to the same Idempotency-Key. */
  replayed: boolean
}

/** Unique and foreign-key violations of a user write, as the errors they mean. */
const writeError = violations({
  users_email_lower_key: () => new usersErrors.EmailTaken(),
  users_user_name_lower_key: () => new usersErrors.UserNameTaken(),
  users_external_id_key: () => new usersErrors.ExternalIdTaken(),
  // The admin was deleted after its token was checked (the session check is cached for a moment).
  users_created_by_admins_id_fk: () => new errors.Unauthorized('The admin of this access token no longer exists')
})

/**
 * The users resource: the repository's statements plus what HTTP needs around
 * them (404 vs 412, conflicts, Idempotency-Key). Plain creates, updates and
 * deletes are one statement each, hence their own transaction; an idempotent
 * create opens a transaction around the key, the change and the stored answer.
 */
export function createUsersService (db: Database, secretKey: string, audit: Pick<AuditService, 'insertSql' | 'record'>, webhooks: Pick<WebhooksService, 'eventSql'>) {
  const repository = createUsersRepository(db, secretKey, audit.insertSql, webhooks.eventSql)
  const transfer = createTransfer(db, repository, audit)
  const idempotency = createIdempotencyRepository(db)

  /** After a write matched no row: 404 when the user does not exist, else 412 (its version is not one If-Match named). */
  async function missingOrStale (id: string): Promise<never> {
    if (await repository.version(id) === null) throw new errors.NotFound(`No user with id ${id}`)
    throw new errors.PreconditionFailed('The user has changed since the ETag given in If-Match: GET it again and retry with its new ETag')
  }

  return {
    repository,
    idempotency,
    /** Bulk import and export (./transfer.ts). */
    transfer,

    get: async (id: string): Promise<UserRow | null> => await repository.get(id),

    /** A user with its groups, in one statement. */
    getWithGroups: repository.getWithGroups,

    list: async (query: PageQuery): Promise<Page<UserRow>> => await repository.list(query),

    async create (user: NewUser, actor: Actor): Promise<UserRow> {
      try {
        return await repository.create(user, actor)
      } catch (err) {
        throw writeError(err)
      }
    },

    /**
     * Creates a user once per Idempotency-Key: the first request creates it and
     * stores `respond(user)`; a retry with the same fingerprint gets that stored
     * response back (also when both race), another fingerprint a 422.
     */
    async createOnce (user: NewUser, actor: Actor, key: { key: string, fingerprint: string }, respond: (user: UserRow) => StoredResponse): Promise<CreateResult> {
      try {
        return await transaction(db, async (tx) => {
          const first = await idempotency.claim(tx, actor.id, key.key, key.fingerprint)
          if (first !== null) {
            if (first.fingerprint !== key.fingerprint) throw new errors.IdempotencyKeyReused()
            return { ...first.response, replayed: true }
          }
          const response = respond(await repository.create(user, actor, tx))
          await idempotency.store(tx, actor.id, key.key, response)
          return { ...response, replayed: false }
        })
      } catch (err) {
        throw writeError(err)
      }
    },

    async update (id: string, patch: UserPatchBody, versions: number[] | null, actor: Actor): Promise<UserRow> {
      let row: UserRow | null
      try {
        row = await repository.update(id, patch, versions, actor)
      } catch (err) {
        throw writeError(err)
      }
      return row ?? await missingOrStale(id)
    },

    /**
     * A change computed from the user as it is (SCIM's PUT and PATCH), under
     * its row lock: `changes` answers the fields to change (none: the user is
     * answered unchanged). 404 / 412 as for update.
     */
    async change (id: string, versions: number[] | null, actor: Actor, changes: (current: UserRow) => UserPatchBody): Promise<UserRow> {
      let row: UserRow | null
      try {
        row = await transaction(db, async (tx) => {
          const current = await repository.lock(id, tx)
          if (current === null || (versions !== null && !versions.includes(current.version))) return null
          const patch = changes(current)
          return Object.keys(patch).length === 0 ? current : await repository.update(id, patch, null, actor, tx)
        })
      } catch (err) {
        throw writeError(err)
      }
      return row ?? await missingOrStale(id)
    },

    async remove (id: string, versions: number[] | null, actor: Actor): Promise<UserRow> {
      return await repository.remove(id, versions, actor) ?? await missingOrStale(id)
    }
  }
}

export type UsersService = ReturnType<typeof createUsersService>
