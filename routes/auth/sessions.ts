import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problems } from '../../schemas/problem.ts'
import { bearer, Session } from '../../schemas/auth.ts'
import { SESSIONS_LISTED } from '../../src/auth/service.ts'

/** GET /auth/sessions, DELETE /auth/sessions/{id}: the admin's own sessions. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const rateLimit = app.authRateLimit

  app.get('/sessions', {
    config: { rateLimit },
    schema: {
      tags: ['auth'],
      summary: 'List your live sessions',
      description: `Your sessions that have not ended, most recently used first (at most ${SESSIONS_LISTED}).`,
      security: bearer,
      response: { 200: Type.Array(Session), ...problems(429) }
    }
  }, async (request) => await app.accounts.sessions({ ...request.admin, requestId: request.id }))

  app.delete('/sessions/:id', {
    config: { rateLimit },
    schema: {
      tags: ['auth'],
      summary: 'End one of your sessions',
      description: 'Its access tokens stop working on every instance within 5 s, its refresh token at once. A session that is not yours, or has ended, is 404.',
      security: bearer,
      params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
      // No body is expected, but one sent is still parsed (and may be refused).
      response: { 204: Type.Null({ description: 'The session has ended' }), ...problems(404, 413, 415, 429) }
    }
  }, async (request, reply) => {
    await app.accounts.endSession({ ...request.admin, requestId: request.id }, request.params.id)
    return await reply.code(204).send(null)
  })
}
export default plugin
