import fp from 'fastify-plugin'
import type { Config } from '../src/config.ts'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

/** Exposes the validated configuration (src/config.ts) as `fastify.config`. */
export default fp<{ config: Config }>(async (app, opts) => {
  app.decorate('config', opts.config)
}, { name: 'config' })
