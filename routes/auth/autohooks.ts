import type { FastifyInstance } from 'fastify'
import { deferCount, limiterKey } from '../../src/infra/rate-limit-store.ts'

/**
 * What every route under /auth has in common. THE /auth rate limit: each
 * takes AUTH_RATE_LIMIT requests per AUTH_RATE_WINDOW seconds from one IP,
 * each route counted on its own (a limiter of its own per route, its `scope`
 * the route, counted in PostgreSQL: plugins/rate-limit.ts), checked after
 * authentication; a route with `rateLimitInStatement` counts in its handler's
 * first statement instead (src/infra/rate-limit-store.ts).
 * And the `auth` tag of the API docs, unless a route names its own tags.
 */
export default async function (app: FastifyInstance): Promise<void> {
  const limit = { max: app.config.AUTH_RATE_LIMIT, timeWindow: app.config.AUTH_RATE_WINDOW * 1000 }
  app.addHook('onRoute', (route) => {
    // Every /auth route declares a schema.
    (route.schema as { tags?: string[] }).tags ??= ['auth']
    // A route-level onRequest hook, after the app's own (authentication first), as @fastify/rate-limit adds them.
    const scope = `${[route.method].flat().join(',')} ${route.url}`
    // A login step counts its requests in its own first statement (one round trip less): the limiter is left to it.
    const limiter = app.rateLimit({ ...limit, scope, keyGenerator: limiterKey } as typeof limit)
    const counting = route.config?.rateLimitInStatement === true ? deferCount(limiter, scope, limit) : limiter
    route.onRequest = [...[route.onRequest].flat().filter((hook) => hook !== undefined), counting]
  })
}
