import fp from 'fastify-plugin'
import { createRetentionService, type RetentionService } from '../src/retention/service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The pruning job (src/retention/service.ts). */
    retention: RetentionService
  }
}

/**
 * The pruning job: a run every PRUNE_INTERVAL from the moment the app is
 * ready; one instance of the fleet prunes at a time (the others find the lock
 * taken and skip that run). Close waits for the batch under way.
 */
export default fp(async (app) => {
  const { config } = app
  const retention = createRetentionService({
    db: app.db,
    policy: {
      sessionDays: config.SESSION_RETENTION_DAYS,
      outboxDays: config.OUTBOX_RETENTION_DAYS,
      auditDays: config.AUDIT_RETENTION_DAYS
    },
    log: app.log.child({ component: 'retention' })
  })
  app.decorate('retention', retention)
  let timer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => { timer = setInterval(retention.runLogged, config.PRUNE_INTERVAL).unref() })
  app.addHook('onClose', async () => {
    clearInterval(timer)
    await retention.stop()
  })
}, { name: 'retention', dependencies: ['config', 'db'] })
