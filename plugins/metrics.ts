import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client'
import { readPackage } from '../src/infra/version.ts'
import type { DatabaseSignals } from '../src/infra/database.ts'
import { LOCKOUT_KEYS, LOGIN_OUTCOMES, type SessionSignals } from '../src/sessions/service.ts'
import { CLIENT_TOKEN_OUTCOMES, type ClientSignals } from '../src/clients/service.ts'
import type { OutboxDepth } from '../src/mail/repository.ts'
import { MetricsListener } from '../src/metrics/listener.ts'
import { metricsPort } from '../src/config.ts'

/** Everything the app reports to operators as it happens; counted whether or not metrics are served. */
export interface Signals extends DatabaseSignals, SessionSignals, ClientSignals {}

export interface Metrics {
  readonly registry: Registry
  /** The Prometheus text exposition of every metric; never waits on the database longer than COLLECT_TIMEOUT. */
  render: () => Promise<string>
  /** The separate listener's port when METRICS_PORT is set (once ready), else null. */
  readonly port: number | null
  /** Handed to the plugins that report (db, sessions): each call counts into a metric of this registry. */
  readonly signals: Signals
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/** The label of requests that matched no route (404, 405): one value, whatever the URL. */
export const UNMATCHED_ROUTE = 'unmatched'
/** Longest wait for the outbox depth query: a slow or absent database never stalls a scrape. */
export const COLLECT_TIMEOUT = 1000
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** Statements and waits for a connection are shorter than requests: finer buckets, from 0.5 ms. */
const DB_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * Roster's own counters and histograms (outside the registry until metrics are on): what
 * plugins/db.ts and the sessions and clients services report through `signals`.
 */
function createSignals (): { signals: Signals, metrics: Metric[] } {
  const queries = new Histogram({ name: 'roster_db_query_duration_seconds', help: 'Time from sending a statement to its answer (or its failure), by statement name (unnamed: searches planned per request, BEGIN/COMMIT).', labelNames: ['statement'], buckets: DB_BUCKETS, registers: [] })
  const poolWait = new Histogram({ name: 'roster_db_pool_wait_seconds', help: 'Time a query or transaction waited for a pooled connection (or until the wait failed).', buckets: DB_BUCKETS, registers: [] })
  const reuse = new Counter({ name: 'roster_refresh_token_reuse_total', help: 'Refresh tokens presented again after REFRESH_REUSE_INTERVAL; each revoked its session (possible token theft).', registers: [] })
  reuse.inc(0)
  const logins = new Counter({ name: 'roster_login_attempts_total', help: 'Login steps (POST /auth/login, and POST /auth/login/mfa with two-factor login) by outcome: success, mfa_required, invalid_credentials, invalid_mfa_code, invalid_mfa_token, not_confirmed, locked (refused by the lockout), error.', labelNames: ['outcome'], registers: [] })
  for (const outcome of LOGIN_OUTCOMES) logins.inc({ outcome }, 0)
  const lockouts = new Counter({ name: 'roster_lockouts_total', help: 'Lockout keys locked by an attempt: key="client" (an email from one client address, LOCKOUT_THRESHOLD), key="account" (an email from anywhere, LOCKOUT_ACCOUNT_THRESHOLD).', labelNames: ['key'], registers: [] })
  for (const key of LOCKOUT_KEYS) lockouts.inc({ key }, 0)
  const clientTokens = new Counter({ name: 'roster_client_tokens_total', help: 'POST /auth/token requests the grant decided, by outcome: issued, invalid_client (unknown client or wrong secret), invalid_scope, unsupported_grant_type.', labelNames: ['outcome'], registers: [] })
  for (const outcome of CLIENT_TOKEN_OUTCOMES) clientTokens.inc({ outcome }, 0)
  // One child per statement name, kept: observing through it skips hashing the labels of every query.
  const byStatement = new Map<string, { observe: (value: number) => void }>()
  return {
    metrics: [queries, poolWait, reuse, logins, lockouts, clientTokens],
    signals: {
      query (statement, seconds) {
        let child = byStatement.get(statement)
        if (child === undefined) byStatement.set(statement, child = queries.labels(statement))
        child.observe(seconds)
      },
      poolWait (seconds) { poolWait.observe(seconds) },
      refreshTokenReuse () { reuse.inc() },
      loginOutcome (outcome) { logins.inc({ outcome }) },
      lockout (key) { lockouts.inc({ key }) },
      clientToken (outcome) { clientTokens.inc({ outcome }) }
    }
  }
}

/** Settles with the value, or with undefined when it fails or takes longer than `ms`. */
async function within<T> (promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), ms) })
  try {
    return await Promise.race([promise.catch(() => undefined), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Prometheus metrics (prom-client) in a registry of this app's own: requests
 * and their latency by route pattern and status, the process's default metrics
 * (event-loop lag, heap, CPU, file descriptors, GC), the database pool, and the
 * email outbox, and what the database pool and the sessions report through
 * `signals`. Served at GET /metrics on the main port, or on a small listener
 * of its own when METRICS_PORT is set. Off with METRICS_ENABLED=false.
 * Registered early (the db and sessions plugins report through it): the pool
 * and the mail service are read at scrape time only.
 */
export default fp(async (app) => {
  const { config } = app
  const registry = new Registry()
  let port: number | null = null
  const { signals, metrics } = createSignals()
  app.decorate('metrics', {
    registry,
    render: () => registry.metrics(),
    get port () { return port },
    signals
  } satisfies Metrics)
  if (!config.METRICS_ENABLED) return

  collectDefaultMetrics({ register: registry })
  const registers = [registry]
  for (const metric of metrics) registry.registerMetric(metric)

  const labelNames = ['method', 'route', 'status_code'] as const
  const requests = new Counter({ name: 'http_requests_total', help: 'HTTP requests answered, by route pattern and status.', labelNames, registers })
  const duration = new Histogram({ name: 'http_request_duration_seconds', help: 'Time from receiving a request to the end of its answer, by route pattern and status.', labelNames, buckets: DURATION_BUCKETS, registers })
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern (/users/:id), never the URL: one series per route, whatever clients send.
    const labels = { method: request.method, route: request.routeOptions.url ?? UNMATCHED_ROUTE, status_code: String(reply.statusCode) }
    requests.inc(labels)
    duration.observe(labels, reply.elapsedTime / 1000)
  })

  /** A gauge read at each scrape. */
  const gauge = (name: string, help: string, value: () => number): void => {
    registry.registerMetric(new Gauge({ name, help, registers: [], collect () { this.set(value()) } }))
  }
  const info = new Gauge({ name: 'roster_info', help: 'Roster\'s version (always 1).', labelNames: ['version'], registers })
  info.set({ version: readPackage().version }, 1)
  gauge('roster_draining', '1 once a graceful shutdown began (readiness answers 503), else 0.', () => app.draining ? 1 : 0)
  gauge('roster_db_pool_connections', 'Database connections open in the pool.', () => app.pg.pool.totalCount)
  gauge('roster_db_pool_idle_connections', 'Open database connections not in use.', () => app.pg.pool.idleCount)
  gauge('roster_db_pool_waiting_clients', 'Queries waiting for a database connection.', () => app.pg.pool.waitingCount)
  gauge('roster_db_pool_max_connections', 'The pool\'s size (DB_POOL_MAX).', () => config.DB_POOL_MAX)
  gauge('roster_mail_provider_available', '0 while the mail provider is unreachable (emails held back and probed), else 1.', () => app.mail.providerAvailable ? 1 : 0)

  const events = ['queued', 'sent', 'retried', 'failed'] as const
  registry.registerMetric(new Counter({
    name: 'roster_mail_emails_total',
    help: 'Emails since start by event: queued in the outbox, sent, retried after a temporary refusal, failed for good.',
    labelNames: ['event'],
    registers: [],
    collect () {
      this.reset()
      for (const event of events) this.inc({ event }, app.mail.counters[event])
    }
  }))

  const deliveries = ['delivered', 'retried', 'failed'] as const
  registry.registerMetric(new Counter({
    name: 'roster_webhook_deliveries_total',
    help: 'Webhook delivery tries by this instance since start, by outcome: delivered, retried (failed, tried again later), failed for good.',
    labelNames: ['event'],
    registers: [],
    collect () {
      this.reset()
      for (const event of deliveries) this.inc({ event }, app.webhooks.counters[event])
    }
  }))
  registry.registerMetric(new Counter({
    name: 'roster_webhook_endpoints_disabled_total',
    help: 'Webhook endpoints this instance disabled since start because every delivery failed for WEBHOOK_RETRY_WINDOW.',
    registers: [],
    collect () {
      this.reset()
      this.inc(app.webhooks.counters.disabled)
    }
  }))

  registry.registerMetric(new Counter({
    name: 'roster_pruned_rows_total',
    help: 'Rows deleted by this instance\'s pruning job since start, by table.',
    labelNames: ['table'],
    registers: [],
    collect () {
      this.reset()
      for (const [table, rows] of Object.entries(app.retention.pruned)) this.inc({ table }, rows)
    }
  }))

  // One depth query at a time: scrapes during a slow database share it instead of piling up.
  let depthQuery: Promise<OutboxDepth> | null = null
  // One bounded wait per scrape, shared by the three metrics below (prom-client collects them concurrently).
  let depthWait: Promise<OutboxDepth | undefined> | null = null
  const depthErrors = new Counter({
    name: 'roster_mail_outbox_depth_errors_total',
    help: `Scrapes that went without the outbox depth: its query failed or took over ${COLLECT_TIMEOUT} ms.`,
    registers,
    async collect () { await scrapeDepth() }
  })
  const scrapeDepth = async (): Promise<OutboxDepth | undefined> => {
    depthQuery ??= app.mail.depth().finally(() => { depthQuery = null })
    depthWait ??= within(depthQuery, COLLECT_TIMEOUT).then((depth) => {
      depthWait = null
      if (depth === undefined) depthErrors.inc()
      return depth
    })
    return await depthWait
  }
  registry.registerMetric(new Gauge({
    name: 'roster_mail_outbox_depth',
    help: 'Rows in the email outbox by state: pending (waiting to be sent) or failed (given up on). Absent when the database did not answer in time.',
    labelNames: ['state'],
    registers: [],
    async collect () {
      this.reset()
      const depth = await scrapeDepth()
      if (depth === undefined) return
      this.set({ state: 'pending' }, depth.pending)
      this.set({ state: 'failed' }, depth.failed)
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'roster_mail_outbox_oldest_pending_seconds',
    help: 'How long the oldest email waiting in the outbox has waited (0 when none waits): a stuck dispatcher or provider shows here first. Absent when the database did not answer in time.',
    registers: [],
    async collect () {
      this.reset()
      const depth = await scrapeDepth()
      if (depth !== undefined) this.set(depth.oldestPendingSeconds)
    }
  }))

  const listenerPort = metricsPort(config)
  // Port 0: GET /metrics on the main port (routes/index.ts, registered with the other routes).
  if (listenerPort === 0) return

  // A listener of its own (src/metrics/listener.ts): not behind the proxy, not in the API docs.
  const listener = new MetricsListener(async () => await registry.metrics(), registry.contentType, app.log)
  app.addHook('onReady', async () => {
    port = await listener.listen(listenerPort, config.HOST)
    app.log.info({ port }, 'metrics listening')
  })
  app.addHook('onClose', async () => { await listener.close() })
}, { name: 'metrics', dependencies: ['config', 'swagger'] })
