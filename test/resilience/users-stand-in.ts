/**
 * TEST-ONLY STAND-IN for `POST /users` (issue 5), until the users API is merged.
 *
 * Loaded into the real server process (`node --import … src/server.ts`) by
 * crash.test.ts: Fastify announces every new instance on the
 * `fastify.initialization` diagnostics channel, and this registers
 * `POST /test/users` on it. It does what `POST /users` does to the database,
 * without its validation rules: one transaction records the Idempotency-Key
 * (db/schema/audit.ts), inserts the user (unique email) and its audit event; a
 * retry with the same key replays the stored 201, the same key with another
 * body is a 422. Production code never loads this file.
 */
import { createHash } from 'node:crypto'
import { subscribe } from 'node:diagnostics_channel'
import { and, eq, sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { idempotencyKeys } from '../../db/schema/audit.ts'
import { users } from '../../db/schema/users.ts'
import { recordAudit } from '../../src/audit.ts'
import { errors } from '../../src/errors.ts'
import { problems } from '../../schemas/problem.ts'

export const STAND_IN_PATH = '/test/users'

const User = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  name: Type.Union([Type.String(), Type.Null()])
}, { additionalProperties: false })

const standIn: FastifyPluginAsyncTypebox = async (app) => {
  app.post(STAND_IN_PATH, {
    // Registered before the app's plugins: errors go to the app's own handler, looked up when one happens.
    errorHandler: (err, request, reply) => app.errorHandler(err, request, reply),
    schema: {
      tags: ['test'],
      summary: 'Test-only stand-in for POST /users',
      headers: Type.Object({ 'idempotency-key': Type.String({ minLength: 1, maxLength: 200 }) }),
      body: Type.Object({ email: Type.String({ minLength: 3, maxLength: 254 }), name: Type.Optional(Type.String({ maxLength: 100 })) }, { additionalProperties: false }),
      response: { 201: User, ...problems(400, 401, 422) }
    }
  }, async (request, reply) => {
    const adminId = request.admin.id
    const key = request.headers['idempotency-key']
    const fingerprint = createHash('sha256').update(JSON.stringify(request.body)).digest('base64url')
    const user = await app.db.transaction(async (tx) => {
      // A racing request with the same key makes this wait for its commit, then find its row.
      const claimed = await tx.insert(idempotencyKeys)
        .values({ adminId, key, fingerprint, expiresAt: sql`now() + interval '24 hours'` })
        .onConflictDoNothing()
        .returning({ key: idempotencyKeys.key })
      if (claimed.length === 0) {
        const [first] = await tx.select().from(idempotencyKeys).where(and(eq(idempotencyKeys.adminId, adminId), eq(idempotencyKeys.key, key)))
        if (first?.fingerprint !== fingerprint) throw new errors.Unprocessable('This Idempotency-Key was used with another request body')
        return JSON.parse(first.responseBody as string) as typeof User.static
      }
      const [created] = await tx.insert(users)
        .values({ email: request.body.email, name: request.body.name, createdBy: adminId })
        .returning({ id: users.id, email: users.email, name: users.name })
      const row = created as typeof User.static
      await recordAudit(tx, { actorId: adminId, action: 'user.create', targetType: 'user', targetId: row.id, requestId: request.id, changes: { email: row.email, name: row.name } })
      await tx.update(idempotencyKeys)
        .set({ statusCode: 201, responseBody: JSON.stringify(row) })
        .where(and(eq(idempotencyKeys.adminId, adminId), eq(idempotencyKeys.key, key)))
      return row
    })
    return await reply.code(201).send(user)
  })
}

subscribe('fastify.initialization', (message) => {
  (message as { fastify: FastifyInstance }).fastify.register(fp(standIn, { name: 'users-stand-in' }))
})
