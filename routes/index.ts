import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { readPackage } from '../src/infra/version.ts'
import { metricsPort } from '../src/config.ts'
import { problems } from '../schemas/problem.ts'

const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const { name, version } = readPackage()
  app.get('/', {
    config: { public: true },
    schema: {
      tags: ['service'],
      summary: 'Service name, version and where the docs are',
      response: {
        200: Type.Object({ name: Type.String(), version: Type.String(), docs: Type.String() }, { additionalProperties: false }),
        ...problems()
      }
    }
  }, async () => ({ name, version, docs: '/apidocs' }))

  // GET /metrics on the main port: when metrics are on and METRICS_PORT is 0 (outside production, by
  // default); otherwise plugins/metrics.ts serves them on a listener of its own and the main port has
  // none. Here, not in that plugin (which loads before authentication), so that its access is declared
  // like every other route's.
  if (!app.config.METRICS_ENABLED || metricsPort(app.config) !== 0) return
  const { registry } = app.metrics
  app.get('/metrics', {
    config: { public: true, loadShedding: false, rateLimit: false },
    schema: {
      tags: ['service'],
      summary: 'Prometheus metrics (text exposition format)',
      description: 'Requests by route and status, latency, event loop, memory, database pool, email outbox, logins, pruning. Public: block it at the proxy (deploy/nginx.conf does), or set METRICS_PORT to serve it on a port of its own.',
      response: {
        200: { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { schema: Type.String() } } },
        ...problems()
      }
    }
  }, async (_request, reply) => {
    const body = await registry.metrics()
    return reply.type(registry.contentType).send(body)
  })
}
export default plugin
