import type { FastifyInstance } from 'fastify'

/**
 * THE /auth rate limit: every route under /auth takes AUTH_RATE_LIMIT requests
 * per AUTH_RATE_WINDOW seconds from one IP, each route counted on its own (a
 * limiter of its own per route, as a route-level `config.rateLimit` would
 * make), checked after authentication like before.
 */
export default async function (app: FastifyInstance): Promise<void> {
  const limit = { max: app.config.AUTH_RATE_LIMIT, timeWindow: app.config.AUTH_RATE_WINDOW * 1000 }
  app.addHook('onRoute', (route) => {
    const hook = app.rateLimit(limit)
    route.onRequest = route.onRequest === undefined ? [hook] : [...([] as unknown[]).concat(route.onRequest), hook] as typeof route.onRequest
  })
}
