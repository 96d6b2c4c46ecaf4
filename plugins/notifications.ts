import fp from 'fastify-plugin'
import { Listener, notify, type Subscription } from '../src/infra/notifications.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** PostgreSQL LISTEN/NOTIFY between the instances on one database (src/infra/notifications.ts). */
    notifications: {
      /** Listens on `channel` from the start of the app on (call it while the app is being built). */
      subscribe: (channel: string, subscription: Subscription) => void
      /** NOTIFY `channel` with `payload`, to every instance listening (this one included). */
      notify: (channel: string, payload: string) => Promise<void>
    }
  }
}

/** How often the LISTEN connection is checked (src/infra/notifications.ts): below common NAT and load-balancer idle timeouts (60 s and more). */
export const LISTEN_HEARTBEAT = 30_000

/**
 * One LISTEN connection per instance, shared by every subscriber (the email
 * outbox, the session cache), on DATABASE_LISTEN_URL or else the main
 * database: a session of its own, which PgBouncer in transaction pooling
 * cannot give. Connected once the app is ready, closed with it.
 */
export default fp(async (app) => {
  if (!app.config.DB_PREPARED_STATEMENTS && app.config.DATABASE_LISTEN_URL === undefined) {
    app.log.warn('DB_PREPARED_STATEMENTS=false (behind a transaction pooler?) but no DATABASE_LISTEN_URL: a LISTEN through a transaction pooler hears nothing, so new emails wait for the next poll and ended sessions for SESSION_CACHE_TTL. Set DATABASE_LISTEN_URL to the PostgreSQL server itself')
  }
  const listener = new Listener({
    connectionString: app.databaseListenUrl,
    connectionTimeout: app.config.DB_CONNECTION_TIMEOUT,
    retryDelay: 1000,
    heartbeat: LISTEN_HEARTBEAT,
    log: app.log
  })
  app.decorate('notifications', {
    subscribe: (channel: string, subscription: Subscription) => { listener.subscribe(channel, subscription) },
    notify: async (channel: string, payload: string) => { await notify(app.db, channel, payload) }
  })
  app.addHook('onReady', async () => { listener.start() })
  app.addHook('onClose', async () => { await listener.stop() })
}, { name: 'notifications', dependencies: ['config', 'db'] })
