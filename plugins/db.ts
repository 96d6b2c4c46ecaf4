import fp from 'fastify-plugin'
import fastifyPostgres from '@fastify/postgres'
import type { EmbeddedServer } from '../db/embedded.ts'
import { maskPassword } from '../db/embedded.ts'
import { runMigrations } from '../db/migrate.ts'
import { databaseServer, poolOptions } from '../db/open.ts'
import { observePool, type Database } from '../src/infra/database.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The pool (@fastify/postgres): repositories query it, src/infra/database.ts's transaction() opens transactions on it. */
    db: Database
    /** The embedded PostgreSQL server, when no external one is configured. */
    embeddedPostgres: EmbeddedServer | null
    /** Where the instance's one LISTEN connection goes: DATABASE_LISTEN_URL, else the main database (plugins/notifications.ts). */
    databaseListenUrl: string
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
  app.decorate('databaseListenUrl', config.DATABASE_LISTEN_URL ?? connectionString)
  if (embedded !== null) {
    const server = embedded
    // The port changes at every start (unless EMBEDDED_PG_PORT): say where it is, for psql and the like.
    app.log.info({ url: maskPassword(server.url) }, 'embedded PostgreSQL listening (loopback only; docs/operations.md says how to connect)')
    // Registered before the pool, so it runs after @fastify/postgres has ended it.
    app.addHook('onClose', async () => {
      await server.stop()
      app.log.info('embedded PostgreSQL stopped')
    })
  }

  await app.register(fastifyPostgres, poolOptions(config, connectionString))
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
