import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import createError from '@fastify/error'

const RateLimited = createError('FST_ERR_RATE_LIMIT', 'Too many requests from this address: retry in %s', 429)

declare module 'fastify' {
  interface FastifyInstance {
    /** The per-IP limit of every /auth route: `config: { rateLimit: app.authRateLimit }`. */
    authRateLimit: { max: number, timeWindow: number }
  }
}

/**
 * @fastify/rate-limit, per client IP (request.ip, which TRUST_PROXY decides),
 * only on routes that ask for it with `config.rateLimit`: every /auth route
 * asks for AUTH_RATE_LIMIT requests per AUTH_RATE_WINDOW seconds, each route
 * counted on its own. Counters live in this instance's memory. A 429 goes
 * through the single error handler (problem+json, code ROSTER_RATE_LIMITED)
 * with Retry-After.
 */
export default fp(async (app) => {
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) => new RateLimited(context.after)
  })
  app.decorate('authRateLimit', { max: app.config.AUTH_RATE_LIMIT, timeWindow: app.config.AUTH_RATE_WINDOW * 1000 })
}, { name: 'rate-limit', dependencies: ['config'] })
