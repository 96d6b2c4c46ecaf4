import fp from 'fastify-plugin'
import fastifyPostgres from '@fastify/postgres'
import type { Pool, PoolClient } from 'pg'
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import * as schema from '../db/schema/index.ts'
import { startEmbeddedPostgres, type EmbeddedServer } from '../db/embedded.ts'
import { runMigrations } from '../db/migrate.ts'
import { databaseUrl } from '../src/config.ts'
import { isDatabaseUnavailable } from '../src/errors.ts'
import { resolveFromRoot } from '../src/paths.ts'
import { join } from 'node:path'

export type Database = NodePgDatabase<typeof schema> & { $client: Pool }

declare module 'fastify' {
  interface FastifyInstance {
    /** Drizzle over the @fastify/postgres pool. */
    db: Database
    /** The embedded PostgreSQL server, when no external one is configured. */
    embeddedPostgres: EmbeddedServer | null
  }
}

/**
 * `db.transaction`, on a pooled client that is released whatever happens, and
 * destroyed when its connection failed. drizzle's own (0.45) sends BEGIN
 * outside its try/finally: a BEGIN on a connection that just died (a database
 * restart, a partition) leaks the client for good, and a few of those exhaust
 * the pool, so the service never recovers. It also hands a client whose
 * ROLLBACK failed back to the pool (drizzle-team/drizzle-orm#6023, #6114).
 * Here drizzle runs the transaction on a client it does not release itself.
 */
function transactionOnOwnClient (pool: Pool): Database['transaction'] {
  // drizzle() over a schema takes a while to build: one per connection, not per transaction.
  const onClient = new WeakMap<PoolClient, NodePgDatabase<typeof schema>>()
  return async (transaction, config) => {
    const client = await pool.connect()
    let db = onClient.get(client)
    if (db === undefined) {
      db = drizzle({ client, schema, casing: 'snake_case' })
      onClient.set(client, db)
    }
    return await db.transaction(transaction, config).then((result) => {
      client.release()
      return result
    }, (err: unknown) => {
      // A connection that failed is destroyed, not handed out again.
      client.release(isDatabaseUnavailable(err as Error) ? err as Error : undefined)
      throw err
    })
  }
}

/**
 * PostgreSQL: the server named by DATABASE_URL (or legacy POSTGRES_*), or an
 * embedded one under DATA_DIR/postgres. One pool through @fastify/postgres,
 * drizzle on top, pending migrations applied at start.
 */
export default fp(async (app) => {
  const { config } = app
  let embedded: EmbeddedServer | null = null
  let connectionString = databaseUrl(config)
  if (connectionString === undefined) {
    const dir = join(resolveFromRoot(config.DATA_DIR), 'postgres')
    app.log.info({ dir }, 'starting embedded PostgreSQL')
    embedded = await startEmbeddedPostgres(dir, { port: config.EMBEDDED_PG_PORT, log: (line) => app.log.debug({ postgres: line.trim() }) })
    connectionString = embedded.url
  }
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

  const db = drizzle({ client: pool, schema, casing: 'snake_case' }) as Database
  db.transaction = transactionOnOwnClient(pool)
  app.decorate('db', db)

  if (config.MIGRATE_ON_START) {
    await runMigrations(pool)
    app.log.info('database migrations applied')
  }
}, { name: 'db', dependencies: ['config'] })
