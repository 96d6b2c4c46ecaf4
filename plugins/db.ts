import fp from 'fastify-plugin'
import fastifyPostgres from '@fastify/postgres'
import type { EmbeddedServer } from '../db/embedded.ts'
import { runMigrations } from '../db/migrate.ts'
import { databaseServer } from '../db/open.ts'
import { observePool, type Database } from '../src/infra/database.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The pool (@fastify/postgres): repositories query it, src/infra/database.ts's transaction() opens transactions on it. */
    db: Database
    /** The embedded PostgreSQL server, when no external one is configured. */
    embeddedPostgres: EmbeddedServer | null
  }
}

/**
 * PostgreSQL: the server named by DATABASE_URL (or legacy POSTGRES_*), or an
 * embedded one under DATA_DIR/postgres (db/open.ts). One pool through
 * @fastify/postgres, observed for metrics, pending migrations applied at start.
 */
export default fp(async (app) => {
  const { config } = app
  const { url: connectionString, embedded } = await databaseServer(config, {
    starting: (dir) => { app.log.info({ dir }, 'starting embedded PostgreSQL') },
    log: (line) => app.log.debug({ postgres: line.trim() })
  })
  app.decorate('embeddedPostgres', embedded)
  if (embedded !== null) {
    const server = embedded
    // Registered before the pool, so it runs after @fastify/postgres has ended it.
    app.addHook('onClose', async () => {
      await server.stop()
      app.log.info('embedded PostgreSQL stopped')
    })
  }

  await app.register(fastifyPostgres, {
    connectionString,
    max: config.DB_POOL_MAX,
    connectionTimeoutMillis: config.DB_CONNECTION_TIMEOUT,
    idleTimeoutMillis: 30_000,
    statement_timeout: config.DB_STATEMENT_TIMEOUT,
    query_timeout: config.DB_STATEMENT_TIMEOUT + 1000,
    application_name: 'roster',
    keepAlive: true
  })
  const pool = app.pg.pool
  // An idle client losing its connection (database restart, network) must never crash the process.
  pool.on('error', (err) => { app.log.warn({ err }, 'idle database connection lost') })
  // Checked-out clients get a listener too, for errors between queries.
  pool.on('connect', (client) => { client.on('error', (err) => { app.log.warn({ err }, 'database connection error') }) })
  // Every statement's duration by name, every wait for a connection: roster_db_* metrics.
  observePool(pool, app.metrics.signals)
  app.decorate('db', pool)

  if (config.MIGRATE_ON_START) {
    await runMigrations(pool)
    app.log.info('database migrations applied')
  }
}, { name: 'db', dependencies: ['config', 'metrics'] })
