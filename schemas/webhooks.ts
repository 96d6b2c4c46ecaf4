import { Type, type Static } from '@sinclair/typebox'
import { nullable, PRINTABLE, Timestamp, Uuid } from './common.ts'
import { pageQuery } from './paging.ts'

/** The events a webhook endpoint can subscribe to (docs/webhooks.md). */
export const WEBHOOK_EVENTS = [
  'user.created', 'user.updated', 'user.deleted',
  'group.created', 'group.updated', 'group.deleted',
  'membership.added', 'membership.removed',
  'admin.created', 'admin.updated', 'admin.deleted'
] as const
/** Sent by POST /webhooks/{id}/test only, whatever the endpoint subscribed to. */
export const TEST_EVENT = 'webhook.test'
export type WebhookEventType = typeof WEBHOOK_EVENTS[number]
/**
 * The CTEs (and closing join) that record a webhook event for each row of a CTE
 * of changed rows (`rows`, with an `id`), `data` an SQL expression over its row
 * `r`: the webhooks service's `eventSql`, which the users and groups
 * repositories build their statements with.
 */
export type EventSql = (type: WebhookEventType, rows: string, data: string) => { ctes: string, join: string }

const EventName = Type.Unsafe<WebhookEventType>({ type: 'string', enum: [...WEBHOOK_EVENTS] })
const Url = Type.String({
  format: 'uri',
  maxLength: 2048,
  pattern: '^https?://',
  description: 'Where events are POSTed: `https://` (plain `http://` only with WEBHOOK_ALLOW_PRIVATE=true). Hosts resolving to private, loopback or link-local addresses are refused.'
})
const Events = Type.Array(EventName, { minItems: 1, maxItems: WEBHOOK_EVENTS.length, uniqueItems: true, description: 'The event types sent to this endpoint.' })
const Description = Type.String({ maxLength: 500, pattern: PRINTABLE, description: 'What the endpoint is, for people.' })

export const Webhook = Type.Object({
  id: Uuid,
  url: Type.String(),
  description: Type.String(),
  events: Type.Array(EventName),
  enabled: Type.Boolean({ description: 'False once an owner disabled it, or after its deliveries failed for WEBHOOK_RETRY_WINDOW (then `disabledReason` says so).' }),
  disabledReason: nullable<string>({ type: 'string', description: 'Why the dispatcher disabled it; null otherwise.' }),
  failingSince: nullable<string>({ type: 'string', format: 'date-time', description: 'Start of the current run of failed deliveries; null while deliveries succeed.' }),
  createdAt: Timestamp(),
  updatedAt: Timestamp()
}, { additionalProperties: false, description: 'A webhook endpoint (never its signing secret).' })
export type WebhookView = Static<typeof Webhook>

export const WebhookWithSecret = Type.Object({
  ...Webhook.properties,
  secret: Type.String({ description: 'The signing secret (`whsec_` and base64), shown once: store it now. Verify `webhook-signature` with it (Standard Webhooks).' })
}, { additionalProperties: false })

export const WebhookCreate = Type.Object({
  url: Url,
  events: Events,
  description: Type.Optional(Description)
}, { additionalProperties: false })
export type WebhookCreateBody = Static<typeof WebhookCreate>

export const WebhookPatch = Type.Object({
  url: Type.Optional(Url),
  events: Type.Optional(Events),
  description: Type.Optional(Description),
  enabled: Type.Optional(Type.Boolean({ description: 'true re-enables a disabled endpoint (its held deliveries resume); false stops deliveries (they wait).' }))
}, { additionalProperties: false, minProperties: 1, description: 'The fields to change (at least one).' })
export type WebhookPatchBody = Static<typeof WebhookPatch>

export const WebhookId = Type.Object({ id: Uuid }, { additionalProperties: false })
export const DeliveryId = Type.Object({ id: Uuid, deliveryId: Uuid }, { additionalProperties: false })

export const WebhookListQuery = Type.Object({ ...pageQuery(['createdAt'], 'createdAt') }, { additionalProperties: false })
export const DeliveryListQuery = Type.Object({ ...pageQuery(['createdAt'], '-createdAt') }, { additionalProperties: false })
export type PageParams = Static<typeof WebhookListQuery>

const Attempt = Type.Object({
  attemptedAt: Timestamp(),
  durationMs: Type.Integer(),
  statusCode: nullable<number>({ type: 'integer', description: 'The receiver\'s status; null when none came (refused, unreachable, timed out).' }),
  response: nullable<string>({ type: 'string', description: 'The first 1 KiB of the receiver\'s answer.' }),
  error: nullable<string>({ type: 'string', description: 'Why the try failed; null for a 2xx.' })
}, { additionalProperties: false })

export const Delivery = Type.Object({
  id: Uuid,
  messageId: Type.String({ description: 'The `webhook-id` header: the same on every retry and replay of the message.' }),
  eventType: Type.String(),
  resourceId: Type.String({ description: 'The resource the event is about; events of one resource are delivered in order.' }),
  status: Type.Unsafe<'pending' | 'delivered' | 'failed'>({ type: 'string', enum: ['pending', 'delivered', 'failed'] }),
  nextAttemptAt: nullable<string>({ type: 'string', format: 'date-time', description: 'When it is tried next, while pending.' }),
  createdAt: Timestamp(),
  finishedAt: nullable<string>({ type: 'string', format: 'date-time', description: 'When it was delivered or given up on.' }),
  payload: Type.Object({}, { additionalProperties: true, description: 'The JSON body sent: `{ type, timestamp, data }`.' }),
  attempts: Type.Array(Attempt, { description: 'Every try, oldest first.' })
}, { additionalProperties: false, description: 'One event sent (or to be sent) to one endpoint.' })
export type DeliveryView = Static<typeof Delivery>

export const Queued = Type.Object({
  deliveryId: Uuid
}, { additionalProperties: false, description: 'The delivery queued; follow it in GET /webhooks/{id}/deliveries.' })
