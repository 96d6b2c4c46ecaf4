import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { readPackage } from '../src/infra/version.ts'
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
}
export default plugin
