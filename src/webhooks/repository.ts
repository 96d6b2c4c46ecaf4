import type { Database, Queryable } from '../infra/database.ts'
import { createLister, CREATED_AT, type ListSpec, type Page, type PageQuery } from '../infra/paging/lister.ts'
import { iso, utc } from '../infra/sql.ts'
import type { DeliveryView, WebhookEventType, WebhookView } from '../../schemas/webhooks.ts'

/** Channel the dispatchers LISTEN on; NOTIFY is delivered when the inserting transaction commits. */
export const WEBHOOKS_CHANNEL = 'roster_webhooks'

/** An event a domain records in the transaction of its change. */
export interface WebhookEvent {
  type: WebhookEventType
  /** The resource's id: events of one resource reach each endpoint in the order they were recorded. */
  resourceId: string
  /** The `data` of the payload: the resource as the API shows it (never secrets). */
  data: Record<string, unknown>
}

/** A delivery claimed for one try, with what signing and sending it needs. */
export interface ClaimedDelivery {
  id: string
  messageId: string
  endpointId: string
  url: string
  payload: Record<string, unknown>
  attempts: number
  secret: string
  previousSecret: string | null
}

export interface EndpointRow extends WebhookView {
  version: number
}

/** What an attempt's outcome changed: the delivery's new status, and whether it disabled its endpoint. */
export interface Recorded {
  status: 'pending' | 'delivered' | 'failed'
  disabled: { id: string, url: string, createdBy: string | null } | null
}

/** An endpoint as the API shows it; its instants by `at` (iso, or utc in a list). */
const endpointColumns = (at: (column: string) => string): string => `id, url, description, events, enabled, disabled_reason AS "disabledReason",
  ${at('failing_since')} AS "failingSince", ${at('created_at')} AS "createdAt", ${at('updated_at')} AS "updatedAt", version`
const ENDPOINT_COLUMNS = endpointColumns(iso)

export const WEBHOOKS_LIST: ListSpec = {
  name: 'webhooks',
  from: 'webhook_endpoints',
  columns: endpointColumns(utc),
  sorts: { createdAt: CREATED_AT },
  defaultSort: 'createdAt'
}

/** GET /webhooks/{id}/deliveries: newest first, each with its attempts. */
export const DELIVERIES_LIST: ListSpec = {
  name: 'webhook_deliveries',
  from: 'webhook_deliveries',
  columns: `id, message_id AS "messageId", event_type AS "eventType", resource_id AS "resourceId", status,
    CASE WHEN status = 'pending' THEN ${utc('next_attempt_at')} END AS "nextAttemptAt", ${utc('created_at')} AS "createdAt",
    ${utc('finished_at')} AS "finishedAt", payload,
    (SELECT coalesce(jsonb_agg(jsonb_build_object('attemptedAt', ${iso('a.attempted_at')}, 'durationMs', a.duration_ms,
      'statusCode', a.status_code, 'response', a.response, 'error', a.error) ORDER BY a.attempted_at), '[]'::jsonb)
     FROM webhook_attempts a WHERE a.delivery_id = webhook_deliveries.id) AS attempts`,
  sorts: { createdAt: CREATED_AT },
  defaultSort: '-createdAt',
  filters: { endpointId: { sql: (p) => `endpoint_id = ${p}::uuid` } }
}

/** The payload of an event: `{ type, timestamp, data }` (the Standard Webhooks shape), from SQL expressions. */
const payloadSql = (type: string, data: string): string =>
  `jsonb_build_object('type', ${type}, 'timestamp', ${iso('now()')}, 'data', ${data})`

/**
 * The outbox rows of events: one per event and enabled endpoint subscribed to
 * its type, the same message id for every endpoint. `source` is a relation of
 * (message_id, type, resource_id, payload).
 */
const fanOut = (source: string): string => `INSERT INTO webhook_deliveries (endpoint_id, message_id, event_type, resource_id, payload)
  SELECT e.id, s.message_id, s.type, s.resource_id, s.payload FROM ${source} s JOIN webhook_endpoints e ON e.enabled AND s.type = ANY(e.events)
  ORDER BY s.ord RETURNING 1`

/** Many events in one statement, in order; one NOTIFY when any endpoint takes one. */
const EMIT = {
  name: 'webhooks_emit',
  text: `WITH s AS (
      SELECT gen_random_uuid() AS message_id, t.type, t.resource_id, ${payloadSql('t.type', 't.data')} AS payload, t.ord
      FROM unnest($1::text[], $2::text[], $3::jsonb[]) WITH ORDINALITY AS t(type, resource_id, data, ord)
    ), d AS (${fanOut('s')})
    SELECT pg_notify('${WEBHOOKS_CHANNEL}', '') FROM (SELECT 1 FROM d LIMIT 1) n`
}

/**
 * THE writer of webhook events: records them in the caller's transaction, to
 * be sent once it commits, never if it rolls back (the service's `emit`; the
 * create-admin command calls it directly).
 */
export async function recordEvents (tx: Queryable, events: readonly WebhookEvent[]): Promise<void> {
  await tx.query({ ...EMIT, values: [events.map((e) => e.type), events.map((e) => e.resourceId), events.map((e) => JSON.stringify(e.data))] })
}

/**
 * The CTEs that record the event of a single-statement change (the users
 * repository's writes): `type` a string literal, `rows` the CTE holding the
 * changed rows (with an `id`), `data` the payload's data as an SQL expression
 * over that CTE's row `r`. The statement ends with `FROM <rows> ${WEBHOOKS_NOTIFY_JOIN}`.
 */
export function eventCtes (type: WebhookEventType, rows: string, data: string): string {
  // The payloads are built only when some endpoint takes the event (an InitPlan, evaluated once): a change
  // nobody subscribed to costs one index-less look at the (small) endpoints table.
  return `ws AS (SELECT gen_random_uuid() AS message_id, '${type}'::text AS type, r.id::text AS resource_id,
      ${payloadSql(`'${type}'::text`, data)} AS payload, 1 AS ord FROM ${rows} r
      WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.enabled AND '${type}' = ANY(e.events))),
    wd AS (${fanOut('ws')})`
}
/** Joined to the statement's result: one NOTIFY when an endpoint took the event. */
export const WEBHOOKS_NOTIFY_JOIN = `LEFT JOIN (SELECT pg_notify('${WEBHOOKS_CHANNEL}', '') FROM wd LIMIT 1) wn ON true`

/**
 * Claims up to $1 due deliveries of enabled endpoints, each only when no
 * earlier delivery of the same endpoint and resource is pending (order per
 * resource); locks them with FOR UPDATE SKIP LOCKED and leases them for $2 ms.
 */
const CLAIM = {
  name: 'webhooks_claim',
  text: `
    WITH due AS (
      SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
      WHERE d.status = 'pending' AND d.next_attempt_at <= now()
        AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id AND p.resource_id = d.resource_id
          AND p.status = 'pending' AND p.seq < d.seq)
      ORDER BY d.next_attempt_at, d.seq
      LIMIT $1
      FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE webhook_deliveries d SET next_attempt_at = now() + $2::float8 * interval '1 millisecond'
    FROM due, webhook_endpoints e WHERE d.id = due.id AND e.id = d.endpoint_id
    RETURNING d.id, d.message_id AS "messageId", d.endpoint_id AS "endpointId", e.url, d.payload, d.attempts, e.secret,
      CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS "previousSecret"`
}

/**
 * The outcome of one try ($2 ok): the delivery delivered, failed (tried for $7
 * ms since it was recorded) or due again in $8 ms, and its attempt row. Nothing
 * when the delivery is gone (its endpoint was deleted meanwhile).
 */
const RECORD_ATTEMPT = {
  name: 'webhooks_record_attempt',
  text: `WITH d AS (
      UPDATE webhook_deliveries SET attempts = attempts + 1,
        status = CASE WHEN $2::boolean THEN 'delivered' WHEN created_at <= now() - $7::float8 * interval '1 millisecond' THEN 'failed' ELSE 'pending' END,
        finished_at = CASE WHEN $2::boolean OR created_at <= now() - $7::float8 * interval '1 millisecond' THEN now() END,
        next_attempt_at = now() + $8::float8 * interval '1 millisecond'
      WHERE id = $1 RETURNING id, status
    ), a AS (
      INSERT INTO webhook_attempts (delivery_id, duration_ms, status_code, response, error) SELECT d.id, $3, $4, $5, $6 FROM d
    )
    SELECT status FROM d`
}

/**
 * The endpoint's health after a try ($2 ok): a success ends its run of
 * failures, a failure starts one; `expired` when that run has lasted $3 ms.
 */
const ENDPOINT_OUTCOME = {
  name: 'webhooks_endpoint_outcome',
  text: `UPDATE webhook_endpoints SET failing_since = CASE WHEN $2::boolean THEN NULL ELSE coalesce(failing_since, now()) END
    WHERE id = $1
    RETURNING id, url, created_by AS "createdBy", enabled AND failing_since <= now() - $3::float8 * interval '1 millisecond' AS expired`
}
const DISABLE = {
  name: 'webhooks_disable',
  text: 'UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1'
}

const OWNERS_TO_TELL = {
  name: 'webhooks_owners_to_tell',
  text: `SELECT email, name FROM admins WHERE confirmed_at IS NOT NULL AND role = 'owner' AND (id = $1 OR NOT EXISTS (
      SELECT 1 FROM admins c WHERE c.id = $1 AND c.confirmed_at IS NOT NULL AND c.role = 'owner')) ORDER BY created_at`
}

const INSERT_ENDPOINT = {
  name: 'webhooks_insert',
  text: `INSERT INTO webhook_endpoints (id, url, description, events, secret, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${ENDPOINT_COLUMNS}`
}
const GET_ENDPOINT = { name: 'webhooks_get', text: `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1` }
const UPDATE_ENDPOINT = {
  name: 'webhooks_update',
  text: `UPDATE webhook_endpoints SET
      url = coalesce($2, url), description = coalesce($3, description), events = coalesce($4, events),
      enabled = coalesce($5, enabled),
      disabled_reason = CASE WHEN $5 IS NULL THEN disabled_reason END,
      failing_since = CASE WHEN $5 IS NULL THEN failing_since END,
      version = version + 1, updated_at = now()
    WHERE id = $1 RETURNING ${ENDPOINT_COLUMNS}`
}
const DELETE_ENDPOINT = { name: 'webhooks_delete', text: 'DELETE FROM webhook_endpoints WHERE id = $1 RETURNING id' }
const ROTATE = {
  name: 'webhooks_rotate',
  text: `UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = now() + $3::float8 * interval '1 millisecond',
      secret = $2, version = version + 1, updated_at = now() WHERE id = $1 RETURNING ${ENDPOINT_COLUMNS}`
}
/** A delivery of one endpoint for its own sake: a test event, or a replay (the same message id and payload). */
const ENQUEUE_ONE = {
  name: 'webhooks_enqueue_one',
  text: `WITH d AS (INSERT INTO webhook_deliveries (endpoint_id, message_id, event_type, resource_id, payload)
      VALUES ($1, $2, $3, $4, $5) RETURNING id)
    SELECT d.id, pg_notify('${WEBHOOKS_CHANNEL}', '') FROM d`
}
const REPLAY_SOURCE = {
  name: 'webhooks_replay_source',
  text: 'SELECT message_id AS "messageId", event_type AS "eventType", resource_id AS "resourceId", payload FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2'
}
const DEPTH = {
  name: 'webhooks_depth',
  text: 'SELECT count(*)::int AS pending, coalesce(extract(epoch FROM now() - min(created_at)) * 1000, 0)::float8 AS "oldestMs" FROM webhook_deliveries WHERE status = \'pending\''
}

/** Webhook endpoints and their outbox. Each function is one statement, on the pool or the caller's transaction. */
export function createWebhooksRepository (db: Database, secretKey: string) {
  const pool: Queryable = db
  const endpoints = createLister<EndpointRow>(WEBHOOKS_LIST, secretKey)
  const deliveries = createLister<DeliveryView>(DELIVERIES_LIST, secretKey)
  const one = async <R>(tx: Queryable, config: { name: string, text: string }, values: unknown[]): Promise<R | null> =>
    (await tx.query({ ...config, values })).rows[0] as R | undefined ?? null

  return {
    endpoints,
    deliveries,

    emit: recordEvents,

    listEndpoints: async (query: PageQuery): Promise<Page<EndpointRow>> => await endpoints.page(pool, query),
    listDeliveries: async (query: PageQuery): Promise<Page<DeliveryView>> => await deliveries.page(pool, query),

    getEndpoint: async (id: string, tx: Queryable = pool): Promise<EndpointRow | null> => await one(tx, GET_ENDPOINT, [id]),

    async insertEndpoint (tx: Queryable, values: { id: string, url: string, description: string, events: string[], secret: string, createdBy: string }): Promise<EndpointRow> {
      return await one(tx, INSERT_ENDPOINT, [values.id, values.url, values.description, values.events, values.secret, values.createdBy]) as EndpointRow
    },

    async updateEndpoint (tx: Queryable, id: string, patch: { url?: string, description?: string, events?: string[], enabled?: boolean }): Promise<EndpointRow | null> {
      return await one(tx, UPDATE_ENDPOINT, [id, patch.url ?? null, patch.description ?? null, patch.events ?? null, patch.enabled ?? null])
    },

    deleteEndpoint: async (tx: Queryable, id: string): Promise<boolean> => await one(tx, DELETE_ENDPOINT, [id]) !== null,

    async rotate (tx: Queryable, id: string, secret: string, overlapMs: number): Promise<EndpointRow | null> {
      return await one(tx, ROTATE, [id, secret, overlapMs])
    },

    async enqueueOne (endpointId: string, message: { messageId: string, eventType: string, resourceId: string, payload: Record<string, unknown> }): Promise<string> {
      return (await one<{ id: string }>(pool, ENQUEUE_ONE, [endpointId, message.messageId, message.eventType, message.resourceId, JSON.stringify(message.payload)]) as { id: string }).id
    },

    async replaySource (endpointId: string, deliveryId: string): Promise<{ messageId: string, eventType: string, resourceId: string, payload: Record<string, unknown> } | null> {
      return await one(pool, REPLAY_SOURCE, [deliveryId, endpointId])
    },

    async claim (limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
      return (await db.query<ClaimedDelivery>({ ...CLAIM, values: [limit, leaseMs] })).rows
    },

    /** Records a try's outcome; the delivery's new status, or null when it is gone. */
    async recordAttempt (tx: Queryable, id: string, outcome: { ok: boolean, durationMs: number, statusCode: number | null, response: string | null, error: string | null }, windowMs: number, retryInMs: number): Promise<Recorded['status'] | null> {
      const row = await one<{ status: Recorded['status'] }>(tx, RECORD_ATTEMPT, [id, outcome.ok, outcome.durationMs, outcome.statusCode, outcome.response, outcome.error, windowMs, retryInMs])
      return row?.status ?? null
    },

    /** Records the endpoint's health after a try; the endpoint when its failures have lasted `windowMs` (to be disabled), else null. */
    async endpointOutcome (tx: Queryable, endpointId: string, ok: boolean, windowMs: number): Promise<Recorded['disabled']> {
      const row = await one<{ id: string, url: string, createdBy: string | null, expired: boolean }>(tx, ENDPOINT_OUTCOME, [endpointId, ok, windowMs]) as { id: string, url: string, createdBy: string | null, expired: boolean }
      return row.expired ? { id: row.id, url: row.url, createdBy: row.createdBy } : null
    },

    async disable (tx: Queryable, endpointId: string, reason: string): Promise<void> {
      await tx.query({ ...DISABLE, values: [endpointId, reason] })
    },

    /** Who hears of a disabled endpoint: the owner who created it, or every owner when that one is gone. */
    async ownersToTell (tx: Queryable, createdBy: string | null): Promise<Array<{ email: string, name: string }>> {
      return (await tx.query<{ email: string, name: string }>({ ...OWNERS_TO_TELL, values: [createdBy] })).rows
    },

    /** Deliveries waiting, and the age of the oldest (for metrics). */
    async depth (): Promise<{ pending: number, oldestMs: number }> {
      return (await db.query<{ pending: number, oldestMs: number }>(DEPTH)).rows[0] as { pending: number, oldestMs: number }
    }
  }
}

export type WebhooksRepository = ReturnType<typeof createWebhooksRepository>
