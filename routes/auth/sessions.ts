import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { bearer } from '../../schemas/common.ts'
import { problems } from '../../schemas/problem.ts'
import { AccessToken, Reauthentication, Session, SessionId, SESSIONS_LISTED } from '../../schemas/sessions.ts'
import { adminActorOf } from '../../plugins/auth.ts'

/** GET /auth/sessions, DELETE /auth/sessions/{id}: the admin's own sessions. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/sessions', {
    config: { permission: 'self' },
    schema: {
      summary: 'List your live sessions',
      description: `Your sessions that have not ended, most recently used first (at most ${SESSIONS_LISTED}).`,
      security: bearer,
      response: { 200: Type.Array(Session), ...problems(429) }
    }
  }, async (request) => await app.sessions.list(adminActorOf(request)))

  app.post('/reauthenticate', {
    config: { permission: 'self' },
    schema: {
      summary: 'Step-up: prove it is still you, without a new login',
      description: 'Your password, or with two-factor login a current code (accepted once). Wrong ones count towards the login lockout. Answers an access token of this session whose auth_time is now: sensitive changes (deleting your account, changing email or password, disabling two-factor login, managing API clients) need one from the last 5 minutes.',
      security: bearer,
      body: Reauthentication,
      response: { 200: AccessToken, ...problems(429) }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    return await app.sessions.reauthenticate(adminActorOf(request), request.body)
  })

  app.delete('/sessions/:id', {
    config: { permission: 'self' },
    schema: {
      summary: 'End one of your sessions',
      description: 'Its access tokens stop working on every instance within 5 s, its refresh token at once. A session that is not yours, or has ended, is 404.',
      security: bearer,
      params: SessionId,
      // No body is expected, but one sent is still parsed (and may be refused).
      response: { 204: Type.Null({ description: 'The session has ended' }), ...problems(404, 413, 415, 429) }
    }
  }, async (request, reply) => {
    await app.sessions.end(adminActorOf(request), request.params.id)
    return await reply.code(204).send(null)
  })
}
export default plugin
