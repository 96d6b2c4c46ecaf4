import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problems } from '../../schemas/problem.ts'
import { bearer, Email, GivenPassword, OpaqueToken, TokenPair } from '../../schemas/auth.ts'
import { authErrors } from '../../src/auth/errors.ts'

const BEARER = /^Bearer +(\S+)$/i

/** POST /auth/login, POST /auth/refresh (and the legacy GET), POST /auth/logout. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const rateLimit = app.authRateLimit

  app.post('/login', {
    config: { public: true, rateLimit },
    schema: {
      tags: ['auth'],
      summary: 'Log in: a new session with an access and a refresh token',
      description: 'Unknown email and wrong password give the same 401. An unconfirmed account is told so (403) only after its password verified. After LOCKOUT_THRESHOLD failures within LOCKOUT_WINDOW seconds the email is locked for LOCKOUT_DURATION seconds (429 with Retry-After), whether or not an account has it.',
      body: Type.Object({ email: Email, password: GivenPassword }, { additionalProperties: false }),
      response: { 200: TokenPair, ...problems(401, 403, 429) }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    return await app.accounts.login(request.body, { userAgent: request.headers['user-agent'], ip: request.ip })
  })

  const refreshSchema = {
    tags: ['auth'],
    summary: 'Exchange a refresh token for a new token pair',
    description: 'The refresh token is single use: the answer carries its successor. Presenting a used one again ends the whole session (someone else has a copy).',
    response: { 200: TokenPair, ...problems(401, 429) }
  }

  app.post('/refresh', {
    config: { public: true, rateLimit },
    schema: { ...refreshSchema, body: Type.Object({ refresh_token: OpaqueToken }, { additionalProperties: false }) }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    return await app.accounts.refresh(request.body.refresh_token)
  })

  app.get('/refresh', {
    config: { public: true, rateLimit },
    schema: {
      ...refreshSchema,
      tags: ['auth', 'compatibility'],
      summary: 'Legacy: refresh with the refresh token as bearer (use POST /auth/refresh)',
      description: 'Authorization: Bearer <refresh token>. Otherwise the same as POST /auth/refresh.',
      deprecated: true
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1]
    if (token === undefined || token.length > 256) {
      reply.header('www-authenticate', 'Bearer realm="roster"')
      throw new authErrors.InvalidRefreshToken()
    }
    return await app.accounts.refresh(token)
  })

  app.post('/logout', {
    config: { rateLimit },
    schema: {
      tags: ['auth'],
      summary: 'Log out: end the session of this access token',
      security: bearer,
      // No body is expected, but one sent is still parsed (and may be refused).
      response: { 204: Type.Null({ description: 'The session has ended' }), ...problems(400, 413, 415, 429) }
    }
  }, async (request, reply) => {
    await app.accounts.logout({ ...request.admin, requestId: request.id })
    return await reply.code(204).send(null)
  })
}
export default plugin
