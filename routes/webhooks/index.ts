import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { bearer } from '../../schemas/common.ts'
import { pageHeaders } from '../../schemas/paging.ts'
import { problems } from '../../schemas/problem.ts'
import { Delivery, DeliveryId, DeliveryListQuery, Queued, Webhook, WebhookCreate, WebhookId, WebhookListQuery, WebhookPatch, WebhookWithSecret } from '../../schemas/webhooks.ts'
import { setPageHeaders } from '../../src/infra/paging/links.ts'
import { actorOf } from '../../plugins/auth.ts'

const page = (description: string, schema: ReturnType<typeof Type.Array>) => ({ description, headers: pageHeaders, content: { 'application/json': { schema } } })

/** /webhooks: signed webhook endpoints (Standard Webhooks), managed by owners; their deliveries. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const { webhooks } = app
  const config = { permission: 'webhooks:manage' as const }
  const tags = ['webhooks']

  app.post('/', {
    config,
    schema: {
      tags,
      summary: 'Create a webhook endpoint',
      description: 'Answers the endpoint with its signing secret, shown this once. Events of the chosen types are POSTed to the URL, signed (docs/webhooks.md).',
      security: bearer,
      body: WebhookCreate,
      response: { 201: WebhookWithSecret, ...problems(422) }
    }
  }, async (request, reply) => {
    const created = await webhooks.create(request.body, actorOf(request))
    return await reply.code(201).header('location', `/webhooks/${created.id}`).send(created)
  })

  app.get('/', {
    config,
    schema: {
      tags,
      summary: 'List webhook endpoints',
      description: 'Oldest first, paged by keyset cursor: follow the `Link: rel="next"` header until there is none.',
      security: bearer,
      querystring: WebhookListQuery,
      response: { 200: page('A page of endpoints', Type.Array(Webhook)) }
    }
  }, async (request, reply) => {
    const found = await webhooks.list(request.query)
    setPageHeaders(reply, webhooks.repository.endpoints, request.url, request.query, found)
    return found.rows
  })

  app.get('/:id', {
    config,
    schema: { tags, summary: 'Get a webhook endpoint', security: bearer, params: WebhookId, response: { 200: Webhook, ...problems(404) } }
  }, async (request) => await webhooks.get(request.params.id))

  app.patch('/:id', {
    config,
    schema: {
      tags,
      summary: 'Change a webhook endpoint',
      description: '`enabled: true` re-enables an endpoint that was disabled; its held deliveries resume.',
      security: bearer,
      params: WebhookId,
      body: WebhookPatch,
      response: { 200: Webhook, ...problems(404, 422) }
    }
  }, async (request) => await webhooks.update(request.params.id, request.body, actorOf(request)))

  app.delete('/:id', {
    config,
    schema: {
      tags,
      summary: 'Delete a webhook endpoint',
      description: 'Its pending deliveries are dropped with it.',
      security: bearer,
      params: WebhookId,
      response: { 204: Type.Null({ description: 'Deleted' }), ...problems(404) }
    }
  }, async (request, reply) => {
    await webhooks.remove(request.params.id, actorOf(request))
    return await reply.code(204).send(null)
  })

  app.post('/:id/rotate-secret', {
    config,
    schema: {
      tags,
      summary: 'Rotate the signing secret of a webhook endpoint',
      description: 'Answers the new secret, shown this once. For 24 hours the previous secret signs too (a second signature in `webhook-signature`), so receivers can switch without losing events.',
      security: bearer,
      params: WebhookId,
      response: { 200: WebhookWithSecret, ...problems(404) }
    }
  }, async (request) => await webhooks.rotate(request.params.id, actorOf(request)))

  app.post('/:id/test', {
    config,
    schema: {
      tags,
      summary: 'Send a test event to a webhook endpoint',
      description: 'Queues a `webhook.test` event for this endpoint alone; follow it in its deliveries.',
      security: bearer,
      params: WebhookId,
      response: { 202: Queued, ...problems(404) }
    }
  }, async (request, reply) => await reply.code(202).send({ deliveryId: await webhooks.test(request.params.id) }))

  app.get('/:id/deliveries', {
    config,
    schema: {
      tags,
      summary: 'List the deliveries of a webhook endpoint',
      description: 'Newest first, each with its payload and every try (status code, the start of the answer, the error). Paged by keyset cursor.',
      security: bearer,
      params: WebhookId,
      querystring: DeliveryListQuery,
      response: { 200: page('A page of deliveries', Type.Array(Delivery)), ...problems(404) }
    }
  }, async (request, reply) => {
    const found = await webhooks.deliveries(request.params.id, request.query)
    setPageHeaders(reply, webhooks.repository.deliveries, request.url, request.query, found)
    return found.rows
  })

  app.post('/:id/deliveries/:deliveryId/replay', {
    config,
    schema: {
      tags,
      summary: 'Send a delivery again',
      description: 'Queues the same message (the same `webhook-id` and body) once more, after whatever is pending for its resource.',
      security: bearer,
      params: DeliveryId,
      response: { 202: Queued, ...problems(404) }
    }
  }, async (request, reply) => await reply.code(202).send({ deliveryId: await webhooks.replay(request.params.id, request.params.deliveryId) }))
}
export default plugin
