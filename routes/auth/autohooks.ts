import type { FastifyInstance } from 'fastify'

/**
 * What every route under /auth has in common. THE /auth rate limit: each
 * takes AUTH_RATE_LIMIT requests per AUTH_RATE_WINDOW seconds from one IP,
 * each route counted on its own (a limiter of its own per route, its `scope`
 * the route, counted in PostgreSQL: plugins/rate-limit.ts), checked after
 * authentication.
 * And the `auth` tag of the API docs, unless a route names its own tags.
 */
export default async function (app: FastifyInstance): Promise<void> {
  const limit = { max: app.config.AUTH_RATE_LIMIT, timeWindow: app.config.AUTH_RATE_WINDOW * 1000 }
  app.addHook('onRoute', (route) => {
    // Every /auth route declares a schema.
    (route.schema as { tags?: string[] }).tags ??= ['auth']
    // A route-level onRequest hook, after the app's own (authentication first), as @fastify/rate-limit adds them.
    const scope = `${[route.method].flat().join(',')} ${route.url}`
    route.onRequest = [...[route.onRequest].flat().filter((hook) => hook !== undefined), app.rateLimit({ ...limit, scope } as typeof limit)]
  })
}
