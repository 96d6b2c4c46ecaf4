import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { bearer } from '../../schemas/common.ts'
import { problems } from '../../schemas/problem.ts'
import { Login, MfaChallenge, MfaLogin, Refresh, TokenPair } from '../../schemas/sessions.ts'
import { adminActorOf } from '../../plugins/auth.ts'
import { countInStatement } from '../../src/infra/rate-limit-store.ts'
import { sessionsErrors } from '../../src/sessions/errors.ts'

const BEARER = /^Bearer +(\S+)$/i

/** POST /auth/login (and its second step, /auth/login/mfa), POST /auth/refresh (and the legacy GET), POST /auth/logout. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/login', {
    // Its rate limit is counted in its first statement, with the lockout's attempt (as the second step's).
    config: { public: true, rateLimitInStatement: true },
    schema: {
      summary: 'Log in: a new session with an access and a refresh token',
      description: 'Unknown email and wrong password give the same 401. An unconfirmed account is told so (403) only after its password verified. After LOCKOUT_THRESHOLD failures within LOCKOUT_WINDOW seconds the email is locked for LOCKOUT_DURATION seconds (429 with Retry-After), whether or not an account has it. An account with two-factor login answers `{mfa_required: true, mfa_token}` instead of tokens: complete the login with POST /auth/login/mfa.',
      body: Login,
      response: {
        200: { description: 'Tokens, or (two-factor login) an mfa_token', content: { 'application/json': { schema: Type.Union([TokenPair, MfaChallenge]) } } },
        ...problems(401, 403, 429)
      }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    return await app.sessions.login(request.body, { userAgent: request.headers['user-agent'], ip: request.ip, rateLimit: countInStatement(request, reply) })
  })

  app.post('/login/mfa', {
    config: { public: true, rateLimitInStatement: true },
    schema: {
      summary: 'Complete a login with its second factor',
      description: 'The mfa_token of POST /auth/login and a current TOTP code (or one of your recovery codes). A code is accepted once; a wrong one counts towards the login lockout like a wrong password. The mfa_token is used up by the login it completes.',
      body: MfaLogin,
      response: { 200: TokenPair, ...problems(401, 429) }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    return await app.sessions.completeMfa(request.body, { userAgent: request.headers['user-agent'], ip: request.ip, rateLimit: countInStatement(request, reply) })
  })

  const refreshSchema = {
    summary: 'Exchange a refresh token for a new token pair',
    description: 'The refresh token is single use: the answer carries its successor. Presenting a used one again ends the whole session (someone else has a copy).',
    response: { 200: TokenPair, ...problems(401, 429) }
  }

  app.post('/refresh', {
    config: { public: true },
    schema: { ...refreshSchema, body: Refresh }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    return await app.sessions.refresh(request.body.refresh_token)
  })

  app.get('/refresh', {
    config: { public: true },
    // A GET that rotates the token: HEAD must not (it would throw the new pair away), so it is a 405.
    exposeHeadRoute: false,
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
      throw new sessionsErrors.InvalidRefreshToken()
    }
    return await app.sessions.refresh(token)
  })

  app.post('/logout', {
    config: { permission: 'self', beforeMfa: true },
    schema: {
      summary: 'Log out: end the session of this access token',
      security: bearer,
      // No body is expected, but one sent is still parsed (and may be refused).
      response: { 204: Type.Null({ description: 'The session has ended' }), ...problems(400, 413, 415, 429) }
    }
  }, async (request, reply) => {
    await app.sessions.logout(adminActorOf(request))
    return await reply.code(204).send(null)
  })
}
export default plugin
