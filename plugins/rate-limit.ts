import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import createError from '@fastify/error'
import { withRetryAfter } from '../src/infra/errors.ts'
import { postgresRateLimitStore, RATE_LIMITED } from '../src/infra/rate-limit-store.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route's handler counts its requests against the rate limit in its own
     * first statement (src/infra/rate-limit-store.ts, StatementCount): one round trip less.
     */
    rateLimitInStatement?: boolean
  }
}

const RateLimited = createError(RATE_LIMITED, 'Too many requests from this address: retry in %s', 429)

/**
 * @fastify/rate-limit, per client IP (request.ip, which TRUST_PROXY decides),
 * only where a route context asks for it: routes/auth/autohooks.ts gives every
 * /auth route AUTH_RATE_LIMIT requests per AUTH_RATE_WINDOW seconds, each
 * route counted on its own. Counters live in PostgreSQL
 * (src/infra/rate-limit-store.ts), shared by every instance: the limit is the
 * fleet's, not each instance's. While the database is unreachable a limited
 * route answers 503, as it would anyway. A 429 goes through the single error
 * handler (problem+json, code ROSTER_RATE_LIMITED), which answers its Retry-After.
 */
export default fp(async (app) => {
  await app.register(rateLimit, {
    global: false,
    store: postgresRateLimitStore(app.db),
    // Retry-After comes from the error, like every other one (src/infra/problem.ts).
    addHeaders: { 'retry-after': false },
    errorResponseBuilder: (_request, context) => withRetryAfter(new RateLimited(context.after), Math.ceil(context.ttl / 1000))
  })
}, { name: 'rate-limit', dependencies: ['config', 'db'] })
