import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Client, ClientId, ClientSecretId, CLIENTS_LISTED, CreatedClient, CreatedSecret, NewClient, SECRETS_PER_CLIENT } from '../../schemas/clients.ts'
import { bearer } from '../../schemas/common.ts'
import { problems } from '../../schemas/problem.ts'
import { adminActorOf } from '../../plugins/auth.ts'

const STEP_UP = 'Needs a login within the last 5 minutes (else 401 ROSTER_REAUTHENTICATION_REQUIRED).'

/** /auth/clients: API clients (OAuth 2.0 client credentials), managed by owners. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const config = { permission: 'clients:manage' as const }

  app.post('/clients', {
    config,
    schema: {
      summary: 'Create an API client',
      description: `Answers its client_id and its first client_secret, shown this once. ${STEP_UP}`,
      security: bearer,
      body: NewClient,
      response: { 201: CreatedClient, ...problems(429) }
    }
  }, async (request, reply) => await reply.code(201).send(await app.clients.create(adminActorOf(request), request.body)))

  app.get('/clients', {
    config,
    schema: {
      summary: 'List API clients',
      description: `Oldest first (at most ${CLIENTS_LISTED}), each with its secrets' creation and last-use times (never the secrets).`,
      security: bearer,
      response: { 200: Type.Array(Client), ...problems(429) }
    }
  }, async () => await app.clients.list())

  app.delete('/clients/:id', {
    config,
    schema: {
      summary: 'Delete an API client',
      description: `Its secrets stop working at once and its access tokens within 5 s. ${STEP_UP}`,
      security: bearer,
      params: ClientId,
      response: { 204: Type.Null({ description: 'Deleted' }), ...problems(404, 429) }
    }
  }, async (request, reply) => {
    await app.clients.remove(adminActorOf(request), request.params.id)
    return await reply.code(204).send(null)
  })

  app.post('/clients/:id/secrets', {
    config,
    schema: {
      summary: 'Add a secret to an API client (rotation)',
      description: `At most ${SECRETS_PER_CLIENT} active secrets (409 otherwise): add the new one, move the client to it, delete the old one. ${STEP_UP}`,
      security: bearer,
      params: ClientId,
      response: { 201: CreatedSecret, ...problems(404, 409, 429) }
    }
  }, async (request, reply) => await reply.code(201).send(await app.clients.addSecret(adminActorOf(request), request.params.id)))

  app.delete('/clients/:id/secrets/:secretId', {
    config,
    schema: {
      summary: 'Delete a secret of an API client',
      description: `It gets no new tokens; tokens it got stay valid until they expire (delete the client to end those). ${STEP_UP}`,
      security: bearer,
      params: ClientSecretId,
      response: { 204: Type.Null({ description: 'Deleted' }), ...problems(404, 429) }
    }
  }, async (request, reply) => {
    await app.clients.removeSecret(adminActorOf(request), request.params.id, request.params.secretId)
    return await reply.code(204).send(null)
  })
}
export default plugin
