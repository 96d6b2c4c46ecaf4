import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { publicUrl } from '../src/config.ts'
import { readPackage } from '../src/version.ts'

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
      uiConfig: { persistAuthorization: true, displayRequestDuration: true, tryItOutEnabled: true },
      staticCSP: true
    })
  })
}, { name: 'swagger', dependencies: ['config'] })
