import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.ts'
import type { AuditService } from '../audit/service.ts'
import type { MailService } from '../mail/service.ts'
import type { Actor } from '../infra/actor.ts'
import { transaction, type Database, type Queryable } from '../infra/database.ts'
import { errors } from '../infra/errors.ts'
import type { Page, PageQuery } from '../infra/paging/lister.ts'
import { createSecretBox } from '../infra/secret-box.ts'
import { TEST_EVENT, type DeliveryView, type WebhookCreateBody, type WebhookPatchBody, type WebhookView, type EventSql } from '../../schemas/webhooks.ts'
import { WebhookDispatcher, type WebhookCounters } from './dispatcher.ts'
import { createWebhooksRepository, eventCtes, WEBHOOKS_NOTIFY_JOIN, type EndpointRow, type WebhookEvent } from './repository.ts'
import { createSender, newSigningSecret } from './sender.ts'
import { checkLiteralTarget, RefusedTargetError } from './targets.ts'

export type { WebhookEvent } from './repository.ts'

export interface WebhooksDeps {
  db: Database
  config: Config
  secretKey: string
  log: FastifyBaseLogger
  mail: Pick<MailService, 'enqueue'>
  audit: Pick<AuditService, 'record'>
}

/** How long the previous signing secret still signs after a rotation. */
export const ROTATION_OVERLAP = 24 * 3_600_000

const view = ({ version: _version, ...row }: EndpointRow): WebhookView => row

/**
 * Webhooks: endpoints (owner-managed), THE function domains record events
 * with (`emit`, in their transaction), and the dispatcher that delivers them.
 */
export function createWebhooksService (deps: WebhooksDeps) {
  const { db, config, log } = deps
  const repository = createWebhooksRepository(db, deps.secretKey)
  const box = createSecretBox(deps.secretKey, 'webhook-signing-secret')
  const seal = (secret: string, endpointId: string): string => box.seal(Buffer.from(secret), endpointId)
  const counters: WebhookCounters = { delivered: 0, retried: 0, failed: 0, disabled: 0 }
  const dispatcher = new WebhookDispatcher({
    db,
    repository,
    send: createSender({ timeout: config.WEBHOOK_TIMEOUT, allowPrivate: config.WEBHOOK_ALLOW_PRIVATE }),
    openSecret: (sealed, endpointId) => box.open(sealed, endpointId).toString(),
    mail: deps.mail,
    log: log.child({ component: 'webhooks' }),
    counters,
    batchSize: config.WEBHOOK_BATCH_SIZE,
    timeout: config.WEBHOOK_TIMEOUT,
    retryBase: config.WEBHOOK_RETRY_BASE,
    retryWindow: config.WEBHOOK_RETRY_WINDOW,
    pollInterval: config.WEBHOOK_POLL_INTERVAL
  })

  /** Refuses a target the SSRF rules will never let a delivery reach (names are checked again at each delivery). */
  function checkUrl (url: string): void {
    const parsed = new URL(url)
    if (config.WEBHOOK_ALLOW_PRIVATE) return
    if (parsed.protocol !== 'https:') throw new errors.Unprocessable('The webhook URL must use https (plain http only with WEBHOOK_ALLOW_PRIVATE=true)')
    try {
      checkLiteralTarget(parsed)
    } catch (err) {
      throw new errors.Unprocessable(`The webhook URL is refused: ${(err as RefusedTargetError).message} (allowed only with WEBHOOK_ALLOW_PRIVATE=true)`)
    }
  }

  const audit = async (tx: Queryable, actor: Actor, action: 'webhook.create' | 'webhook.update' | 'webhook.delete' | 'webhook.secret_rotate', id: string, changes: Record<string, unknown>): Promise<void> => {
    await deps.audit.record(tx, { actor: { type: actor.type, id: actor.id }, action, targetType: 'webhook', targetId: id, requestId: actor.requestId, changes })
  }

  async function existing (id: string): Promise<EndpointRow> {
    const row = await repository.getEndpoint(id)
    if (row === null) throw new errors.NotFound(`No webhook endpoint with id ${id}`)
    return row
  }

  return {
    repository,
    counters: counters as Readonly<WebhookCounters>,

    /**
     * THE way a domain records events: call it with the transaction that makes
     * the change. Each event goes to every enabled endpoint subscribed to its
     * type once that transaction commits, never if it rolls back.
     */
    emit: async (tx: Queryable, events: readonly WebhookEvent[]): Promise<void> => { await repository.emit(tx, events) },

    /**
     * The same for a domain whose change is one SQL statement (users): the CTEs
     * to add to its WITH, and the join to end it with (see ./repository.ts).
     */
    eventSql: ((type, rows, data) => ({ ctes: eventCtes(type, rows, data), join: WEBHOOKS_NOTIFY_JOIN })) satisfies EventSql,

    async create (body: WebhookCreateBody, actor: Actor): Promise<WebhookView & { secret: string }> {
      checkUrl(body.url)
      const id = randomUUID()
      const secret = newSigningSecret()
      const row = await transaction(db, async (tx) => {
        const row = await repository.insertEndpoint(tx, { id, url: body.url, description: body.description ?? '', events: body.events, secret: seal(secret, id), createdBy: actor.id })
        await audit(tx, actor, 'webhook.create', id, { url: body.url, events: body.events, description: row.description })
        return row
      })
      return { ...view(row), secret }
    },

    list: async (query: PageQuery): Promise<Page<WebhookView>> => {
      const page = await repository.listEndpoints(query)
      return { ...page, rows: page.rows.map(view) }
    },

    get: async (id: string): Promise<WebhookView> => view(await existing(id)),

    async update (id: string, patch: WebhookPatchBody, actor: Actor): Promise<WebhookView> {
      if (patch.url !== undefined) checkUrl(patch.url)
      const row = await transaction(db, async (tx) => {
        const row = await repository.updateEndpoint(tx, id, patch)
        if (row !== null) await audit(tx, actor, 'webhook.update', id, patch)
        return row
      })
      if (row === null) throw new errors.NotFound(`No webhook endpoint with id ${id}`)
      if (patch.enabled === true) dispatcher.wake()
      return view(row)
    },

    async remove (id: string, actor: Actor): Promise<void> {
      const deleted = await transaction(db, async (tx) => {
        const deleted = await repository.deleteEndpoint(tx, id)
        if (deleted) await audit(tx, actor, 'webhook.delete', id, {})
        return deleted
      })
      if (!deleted) throw new errors.NotFound(`No webhook endpoint with id ${id}`)
    },

    /** A new signing secret; the previous one keeps signing (a second signature) for ROTATION_OVERLAP. */
    async rotate (id: string, actor: Actor): Promise<WebhookView & { secret: string }> {
      const secret = newSigningSecret()
      const row = await transaction(db, async (tx) => {
        const row = await repository.rotate(tx, id, seal(secret, id), ROTATION_OVERLAP)
        if (row !== null) await audit(tx, actor, 'webhook.secret_rotate', id, { secret: '[rotated]' })
        return row
      })
      if (row === null) throw new errors.NotFound(`No webhook endpoint with id ${id}`)
      return { ...view(row), secret }
    },

    /** Queues a `webhook.test` event for this endpoint alone (also when it is disabled: it is sent once enabled). */
    async test (id: string): Promise<string> {
      const row = await existing(id)
      const messageId = randomUUID()
      const payload = { type: TEST_EVENT, timestamp: new Date().toISOString(), data: { webhookId: row.id, url: row.url } }
      return await repository.enqueueOne(row.id, { messageId, eventType: TEST_EVENT, resourceId: row.id, payload })
    },

    async deliveries (id: string, query: PageQuery): Promise<Page<DeliveryView>> {
      await existing(id)
      return await repository.listDeliveries({ ...query, endpointId: id })
    },

    /** Sends a delivery's message again (the same webhook-id and body), after whatever is pending for its resource. */
    async replay (id: string, deliveryId: string): Promise<string> {
      const source = await repository.replaySource(id, deliveryId)
      if (source === null) throw new errors.NotFound(`No delivery ${deliveryId} of webhook endpoint ${id}`)
      return await repository.enqueueOne(id, source)
    },

    depth: async (): Promise<{ pending: number, oldestMs: number }> => await repository.depth(),
    wake: (): void => { dispatcher.wake() },
    /** Runs one dispatch pass now (also when WEBHOOK_DISPATCHER=false); resolves with the number of deliveries tried. */
    runOnce: async (): Promise<number> => await dispatcher.runOnce(),
    start: (): void => { dispatcher.start() },
    stop: async (): Promise<void> => { await dispatcher.stop() }
  }
}

export type WebhooksService = ReturnType<typeof createWebhooksService>
