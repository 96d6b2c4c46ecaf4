import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'
import cors from '@fastify/cors'
import { csv, publicUrl, type Config } from '../src/config.ts'

/** Registered by src/app.ts ahead of every autoloaded plugin, so its headers are on every answer (a 401 too). */
export const autoload = false

/** True when Roster is reached over HTTPS: only then HSTS and upgrade-insecure-requests make sense. */
export function servedOverHttps (config: Config): boolean {
  return publicUrl(config).startsWith('https://')
}

/**
 * Response headers for an API (@fastify/helmet): nothing a JSON answer carries
 * may run, frame or be framed (`default-src 'none'; frame-ancestors 'none'`),
 * nosniff, no referrer, same-origin resource policy; HSTS only when PUBLIC_URL
 * is https. The Swagger UI at /apidocs sets its own, looser policy
 * (plugins/swagger.ts). CORS (@fastify/cors) only when CORS_ORIGINS is set.
 */
export default fp<{ config: Config }>(async (app, { config }) => {
  const https = servedOverHttps(config)
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] }
    },
    strictTransportSecurity: https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    crossOriginOpenerPolicy: { policy: 'same-origin' }
  })

  const origins = csv(config.CORS_ORIGINS)
  if (origins.length === 0) return
  // A preflight never carries credentials: the catch-all OPTIONS route @fastify/cors adds is public.
  app.addHook('onRoute', (route) => {
    if (route.method === 'OPTIONS' && route.url === '*') route.config = { ...route.config, public: true }
  })
  await app.register(cors, {
    origin: origins.includes('*') ? '*' : origins,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'If-Match', 'If-None-Match', 'Idempotency-Key', 'X-Request-Id'],
    exposedHeaders: ['ETag', 'Location', 'Link', 'Retry-After', 'X-Request-Id', 'X-Total-Count'],
    // Bearer tokens, no cookies: credentialed CORS is never needed.
    credentials: false,
    maxAge: 600,
    // An OPTIONS without Origin is answered like a preflight (204) rather than with a non-problem 400.
    strictPreflight: false
  })
}, { name: 'security' })
