import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { bearer } from '../../../schemas/common.ts'
import { scimErrors, ScimId, scimResponses } from '../../../schemas/scim.ts'
import { errors } from '../../../src/infra/errors.ts'

/** SCIM discovery (RFC 7644 §4): ServiceProviderConfig, ResourceTypes, Schemas. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const { discovery } = app.scim
  const list = <R>(resources: R[]) => ({ schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: resources.length, startIndex: 1, itemsPerPage: resources.length, Resources: resources })
  const config = { permission: 'scim' as const }

  app.get('/ServiceProviderConfig', {
    config,
    schema: { summary: 'What this SCIM service provider supports', security: bearer, response: { 200: scimResponses.serviceProviderConfig, ...scimErrors() } }
  }, async () => discovery.serviceProviderConfig)

  app.get('/ResourceTypes', {
    config,
    schema: { summary: 'The SCIM resource types (User, Group)', security: bearer, response: { 200: scimResponses.resourceTypes, ...scimErrors() } }
  }, async () => list(discovery.resourceTypes))

  app.get('/ResourceTypes/:id', {
    config,
    schema: { summary: 'A SCIM resource type', security: bearer, params: ScimId, response: { 200: scimResponses.resourceType, ...scimErrors(404) } }
  }, async (request) => {
    const found = discovery.resourceTypes.find((r) => r.id === request.params.id)
    if (found === undefined) throw new errors.NotFound(`No resource type ${request.params.id}`)
    return found
  })

  app.get('/Schemas', {
    config,
    schema: { summary: 'The SCIM schemas of users and groups', security: bearer, response: { 200: scimResponses.schemas, ...scimErrors() } }
  }, async () => list(discovery.schemas))

  app.get('/Schemas/:id', {
    config,
    schema: { summary: 'A SCIM schema, by its URN', security: bearer, params: ScimId, response: { 200: scimResponses.schema, ...scimErrors(404) } }
  }, async (request) => {
    const found = discovery.schemas.find((s) => s.id.toLowerCase() === request.params.id.toLowerCase())
    if (found === undefined) throw new errors.NotFound(`No schema ${request.params.id}`)
    return found
  })
}
export default plugin
