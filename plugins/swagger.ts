import { createHash } from 'node:crypto'
import type { FastifyInstance, RouteHandlerMethod } from 'fastify'
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import type { FastifySwaggerUiOptions } from '@fastify/swagger-ui'
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
        description: 'User management: admins register, confirm by email and log in; with their access token they manage the organisation\'s users. Errors are application/problem+json (RFC 9457), except under /scim/v2 (SCIM errors, RFC 7644 §3.12).'
      },
      servers: [{ url: publicUrl(app.config) }],
      tags: [
        { name: 'service', description: 'Service information and health' },
        { name: 'auth', description: 'Admin accounts, sessions and tokens' },
        { name: 'users', description: 'The organisation\'s users' },
        { name: 'groups', description: 'Groups of users and their members' },
        { name: 'scim', description: 'SCIM 2.0 provisioning (RFC 7643, RFC 7644) for identity providers: API clients with scope `scim`; errors are SCIM errors (application/scim+json)' },
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
    const csp = docsCsp(app.config)
    docs.addHook('onSend', async (_request, reply) => { reply.header('content-security-policy', csp) })
    const schema = { hide: true }
    // The document, as @fastify/swagger-ui serves it (JSON, or YAML), without loading the UI.
    docs.get('/apidocs/json', { schema }, async () => app.swagger())
    docs.get('/apidocs/yaml', { schema }, async (_request, reply) => reply.type('application/x-yaml').send(app.swagger({ yaml: true })))
    const ui = lazySwaggerUi(app, {
      routePrefix: '/apidocs',
      uiConfig: { persistAuthorization: true, displayRequestDuration: true, tryItOutEnabled: true, validatorUrl: null }
    })
    docs.get('/apidocs', { schema }, ui)
    docs.get('/apidocs/static/*', { schema }, ui)
  })
}, { name: 'swagger', dependencies: ['config'] })

/** Response headers of the UI's own instance that this one's reply sets itself. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'content-length'])

/**
 * Swagger UI (@fastify/swagger-ui with @fastify/static, about 1.5 MB of heap)
 * is loaded on the first request for it, not at start: in a Fastify instance
 * of its own, serving this app's document, to which these routes hand each
 * request (headers included, so that ETag and Range work as before). What it
 * does not know is this app's 404.
 */
function lazySwaggerUi (app: FastifyInstance, options: FastifySwaggerUiOptions): RouteHandlerMethod {
  let ui: Promise<FastifyInstance> | undefined
  async function load (): Promise<FastifyInstance> {
    const [{ default: Fastify }, { default: swaggerUi }] = await Promise.all([import('fastify'), import('@fastify/swagger-ui')])
    const instance = Fastify({ logger: false })
    // @fastify/swagger-ui depends on @fastify/swagger: here, the app's document.
    await instance.register(fp(async (i) => { i.decorate('swagger', app.swagger) }, { name: '@fastify/swagger' }))
    await instance.register(swaggerUi, options)
    await instance.ready()
    return instance
  }
  return async (request, reply) => {
    ui ??= load()
    const res = await (await ui).inject({ method: request.method as 'GET' | 'HEAD', url: request.url, headers: request.headers })
    if (res.statusCode === 404) {
      reply.callNotFound()
      return reply
    }
    for (const [name, value] of Object.entries(res.headers)) {
      if (!HOP_HEADERS.has(name) && value !== undefined) reply.header(name, value)
    }
    return reply.code(res.statusCode).send(res.rawPayload)
  }
}
