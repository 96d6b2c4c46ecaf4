import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import AutoLoad from '@fastify/autoload'
import fp from 'fastify-plugin'
import FindMyWay, { type HTTPMethod } from 'find-my-way'
import type { Config } from './config.ts'
import { documentImpliedErrors, errorHandler, notFoundHandler } from './infra/problem.ts'
import { Problem } from '../schemas/problem.ts'
import security from '../plugins/security.ts'
import pressure from '../plugins/pressure.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** True once a graceful shutdown began: readiness answers 503 from then on. */
    draining: boolean
  }
}

export interface AppOptions {
  config: Config
}

// src/app.ts lives in <root>/src (from source) or <root>/dist/src (compiled): plugins and routes sit beside src.
const base = dirname(dirname(fileURLToPath(import.meta.url)))
const pluginsDir = join(base, 'plugins')
const routesDir = join(base, 'routes')

async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  fastify.addSchema(Problem)
  fastify.decorate('draining', false)
  fastify.addHook('onRequest', async (request, reply) => { reply.header('x-request-id', request.id) })

  // A second router holding every route, only to tell 404 from 405.
  const allRoutes = FindMyWay()
  fastify.addHook('onRoute', (route) => {
    // A catch-all (CORS's OPTIONS * preflight route) would make every unknown path a 405.
    if (route.url !== '*') allRoutes.on(route.method as HTTPMethod | HTTPMethod[], route.url, () => {})
    documentImpliedErrors(route)
  })

  fastify.setErrorHandler(errorHandler)
  fastify.setNotFoundHandler(notFoundHandler(allRoutes))

  // The edge first: their onRequest hooks then run before any other (authentication included),
  // so that every answer, a 401 or a shed 503 too, carries the security and CORS headers.
  await fastify.register(security, { config: opts.config })
  await fastify.register(pressure, { config: opts.config })

  await fastify.register(AutoLoad, {
    dir: pluginsDir,
    options: { config: opts.config },
    ignorePattern: /^_|\.d\.ts$|\.map$/,
    encapsulate: false
  })

  await fastify.register(AutoLoad, {
    dir: routesDir,
    options: { config: opts.config },
    ignorePattern: /^_|\.d\.ts$|\.map$|schemas\.(ts|js)$/,
    autoHooks: true,
    cascadeHooks: true,
    routeParams: true
  })
}

/** The whole service as one plugin, not encapsulated, so its handlers and decorators reach every route. */
export default fp(app, { name: 'roster' })
