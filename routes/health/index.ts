import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problems } from '../../schemas/problem.ts'
import { errors } from '../../src/infra/errors.ts'
import { appliedMigrations, shippedMigrations } from '../../db/migrate.ts'

const Status = Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false })

const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const expected = shippedMigrations()
  let migrated = false

  app.get('/live', {
    // An overloaded process is alive: shedding liveness would get it restarted and the overload worse.
    config: { public: true, rateLimit: false, loadShedding: false },
    schema: { tags: ['service'], summary: 'Liveness: the process answers', response: { 200: Status, ...problems() } }
  }, async () => ({ status: 'ok' as const }))

  app.get('/ready', {
    config: { public: true, rateLimit: false },
    schema: {
      tags: ['service'],
      summary: 'Readiness: the database answers and every migration is applied',
      response: { 200: Status, ...problems() }
    }
  }, async () => {
    if (app.draining) throw new errors.ServiceUnavailable('The service is shutting down')
    let applied: number
    try {
      applied = await appliedMigrations(app.pg.pool)
    } catch (err) {
      app.log.warn({ err }, 'readiness: database unreachable')
      throw new errors.ServiceUnavailable('The database is unreachable')
    }
    if (!migrated && applied < expected) throw new errors.ServiceUnavailable(`Database migrations pending (${applied} of ${expected} applied)`)
    migrated = true
    return { status: 'ok' as const }
  })
}
export default plugin
