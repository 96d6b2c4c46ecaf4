import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { publicUrl, type Config } from '../src/config.ts'
import { servedOverHttps } from './security.ts'
import { readPackage } from '../src/infra/version.ts'

/** The one inline style Swagger UI inserts (the <style> of its top bar logo), allowed by its hash. */
const UI_LOGO_STYLE = '.logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}'

/**
 * The Swagger UI page loads its scripts, styles and images from /apidocs/static
 * and calls the API ("Try it out") on PUBLIC_URL: nothing inline, nothing from
 * elsewhere. This replaces the API's `default-src 'none'` (plugins/security.ts)
 * on the /apidocs routes only.
 */
export function docsCsp (config: Config): string {
  const directives = [
    "default-src 'none'",
    "base-uri 'self'",
    `connect-src 'self' ${new URL(publicUrl(config)).origin}`,
    "font-src 'self' data:",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "img-src 'self' data:",
    "object-src 'none'",
    "script-src 'self'",
    "script-src-attr 'none'",
    `style-src 'self' 'sha256-${createHash('sha256').update(UI_LOGO_STYLE).digest('base64')}'`
  ]
  if (servedOverHttps(config)) directives.push('upgrade-insecure-requests')
  return directives.join('; ')
}

/** OpenAPI 3.1 document at /apidocs/json and Swagger UI at /apidocs, with a bearer "Authorize" button. */
export default fp(async (app) => {
  const pkg = readPackage()
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Roster',
        version: pkg.version,
        description: 'User management: admins register, confirm by email and log in; with their access token they manage the organisation\'s users. Errors are application/problem+json (RFC 9457).'
      },
      servers: [{ url: publicUrl(app.config) }],
      tags: [
        { name: 'service', description: 'Service information and health' },
        { name: 'auth', description: 'Admin accounts, sessions and tokens' },
        { name: 'users', description: 'The organisation\'s users' },
        { name: 'audit', description: 'Audit log' },
        { name: 'webhooks', description: 'Signed webhooks (Standard Webhooks): endpoints and deliveries' },
        { name: 'compatibility', description: 'Routes of the replaced service, kept working (deprecated)' }
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token from POST /auth/login' }
        }
      }
    },
    refResolver: {
      // Shared schemas (app.addSchema) all carry an $id: name their components after it.
      buildLocalReference: (json) => json.$id as string
    }
  })
  // The UI and its assets are public: every route registered in this context says so.
  await app.register(async (docs) => {
    docs.addHook('onRoute', (route) => { route.config = { ...route.config, public: true } })
    await docs.register(swaggerUi, {
      routePrefix: '/apidocs',
      uiConfig: { persistAuthorization: true, displayRequestDuration: true, tryItOutEnabled: true, validatorUrl: null },
      staticCSP: docsCsp(app.config)
    })
  })
}, { name: 'swagger', dependencies: ['config'] })
