import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../../src/infra/errors.ts'
import { etag, noneMatchFails, writePreconditions } from '../../src/infra/etag.ts'
import { idempotencyKey, requestFingerprint } from '../../src/infra/idempotency.ts'
import { setPageHeaders } from '../../src/infra/paging/links.ts'
import type { NewUser, UserListParams, UserPatchBody, UserRow } from '../../schemas/users.ts'
import type { GroupRefRow } from '../../schemas/groups.ts'
import { actorOf } from '../../plugins/auth.ts'

/**
 * The handlers behind /users and the compatibility routes /user: one
 * implementation, the routes only say where the id comes from. (`_`: not a
 * route file, autoload skips it.)
 */
export function createUserHandlers (app: FastifyInstance) {
  const { users } = app
  const requireIfMatch = app.config.REQUIRE_IF_MATCH

  const path = (request: FastifyRequest): string => request.url.split('?')[0] as string
  const createdHeaders = (user: UserRow): Record<string, string> => ({ location: `/users/${user.id}`, etag: etag(user) })

  /** The versions If-Match accepts (null: any); 428 when REQUIRE_IF_MATCH=true and there is no If-Match. */
  const preconditions = (request: FastifyRequest, id: string): number[] | null => writePreconditions(request.headers['if-match'], id, requireIfMatch, 'user')

  return {
    /** GET /users/{id} answers the user's groups too (a membership change bumps the user's version, so its ETag); the compatibility GET /user does not. */
    async read (request: FastifyRequest, reply: FastifyReply, id: string, withGroups = false): Promise<UserRow | (UserRow & { groups: GroupRefRow[] }) | FastifyReply> {
      const user = withGroups ? await users.getWithGroups(id) : await users.get(id)
      if (user === null) throw new errors.NotFound(`No user with id ${id}`)
      const tag = etag(user)
      reply.header('etag', tag)
      if (noneMatchFails(request.headers['if-none-match'], tag)) return await reply.code(304).send()
      return user
    },

    async list (request: FastifyRequest<{ Querystring: UserListParams }>, reply: FastifyReply): Promise<UserRow[]> {
      const page = await users.list(request.query)
      setPageHeaders(reply, users.repository.lister, request.url, request.query, page)
      return page.rows
    },

    async create (request: FastifyRequest<{ Body: NewUser }>, reply: FastifyReply): Promise<UserRow | FastifyReply> {
      const header = request.headers['idempotency-key'] as string | undefined
      if (header === undefined) {
        const user = await users.create(request.body, actorOf(request))
        reply.code(201).headers(createdHeaders(user))
        return user
      }
      // The stored answer must be the very bytes a retry will get: serialize with the route's own 201 serializer.
      const serialize = reply.getSerializationFunction('201', 'application/json') as unknown as (user: UserRow) => string
      const result = await users.createOnce(request.body, actorOf(request), {
        key: idempotencyKey(header),
        fingerprint: requestFingerprint(app.secretKey, request.method, path(request), request.body)
      }, (user) => ({ statusCode: 201, headers: createdHeaders(user), body: serialize(user) }))
      reply.code(result.statusCode).headers(result.headers).type('application/json; charset=utf-8')
      if (result.replayed) reply.header('idempotent-replayed', 'true')
      return await reply.send(result.body)
    },

    async update (request: FastifyRequest<{ Body: UserPatchBody }>, reply: FastifyReply, id: string): Promise<UserRow> {
      const user = await users.update(id, request.body, preconditions(request, id), actorOf(request))
      reply.header('etag', etag(user))
      return user
    },

    /** DELETE /users/{id} answers 204; the compatibility DELETE /user answers 200 with the deleted user, as the old service did. */
    async remove (request: FastifyRequest, reply: FastifyReply, id: string, answer: 'no-content' | 'deleted-user'): Promise<UserRow | FastifyReply> {
      const user = await users.remove(id, preconditions(request, id), actorOf(request))
      if (answer === 'deleted-user') return user
      return await reply.code(204).send()
    }
  }
}
