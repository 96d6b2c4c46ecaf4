import { join } from 'node:path'
import pg from 'pg'
import { databaseUrl, type Config } from '../src/config.ts'
import { clientClass } from '../src/infra/database.ts'
import { resolveFromRoot } from '../src/infra/paths.ts'
import { maskPassword, runningEmbeddedPostgres, startEmbeddedPostgres, type EmbeddedServer } from './embedded.ts'

export interface DatabaseServer {
  /** The connection string. */
  url: string
  /** The embedded server this process started, or null when DATABASE_URL (or POSTGRES_*) names one. */
  embedded: EmbeddedServer | null
}

export class EmbeddedInUseError extends Error {
  override name = 'EmbeddedInUseError'
}

/**
 * THE startup sequence's first half: the PostgreSQL server named by
 * DATABASE_URL (or legacy POSTGRES_*), or an embedded one under
 * DATA_DIR/postgres, started here. Used by the server (plugins/db.ts, which
 * makes the pool through @fastify/postgres) and by the commands (openDatabase).
 * An embedded server already running on DATA_DIR (a server started by `npm
 * start`) is joined with `join: true` (the commands), and refused otherwise:
 * a second server would lose its database when the first one stops it.
 */
export async function databaseServer (config: Config, opts: { join?: boolean, starting?: (dir: string) => void, log?: (line: string) => void } = {}): Promise<DatabaseServer> {
  const url = databaseUrl(config)
  if (url !== undefined) return { url, embedded: null }
  const dir = join(resolveFromRoot(config.DATA_DIR), 'postgres')
  const running = runningEmbeddedPostgres(dir)
  if (running !== null) {
    if (opts.join === true) return { url: running.url, embedded: null }
    throw new EmbeddedInUseError(`the embedded PostgreSQL in ${dir} is already running (pid ${running.pid}, ${maskPassword(running.url)}), started by another Roster server: stop that one, give this one another DATA_DIR, or set DATABASE_URL to share that database`)
  }
  opts.starting?.(dir)
  const embedded = await startEmbeddedPostgres(dir, { port: config.EMBEDDED_PG_PORT, log: opts.log })
  return { url: embedded.url, embedded }
}

/** The pool of a server (plugins/db.ts): sizes, timeouts, and whether statements keep their names. */
export function poolOptions (config: Config, connectionString: string): pg.PoolConfig {
  return {
    connectionString,
    Client: clientClass(config.DB_PREPARED_STATEMENTS),
    max: config.DB_POOL_MAX,
    connectionTimeoutMillis: config.DB_CONNECTION_TIMEOUT,
    idleTimeoutMillis: 30_000,
    statement_timeout: config.DB_STATEMENT_TIMEOUT,
    query_timeout: config.DB_STATEMENT_TIMEOUT + 1000,
    application_name: 'roster',
    keepAlive: true
  }
}

/**
 * The commands' database (migrate, create-admin): the server (the embedded
 * one of a running Roster server on the same DATA_DIR, joined), and a
 * one-connection pool on it; `close` ends both (never a server it joined).
 */
export async function openDatabase (config: Config): Promise<{ pool: pg.Pool, close: () => Promise<void> }> {
  const server = await databaseServer(config, { join: true })
  // No statement timeout: a migration may take its time.
  const pool = new pg.Pool({ connectionString: server.url, Client: clientClass(config.DB_PREPARED_STATEMENTS), max: 1, connectionTimeoutMillis: config.DB_CONNECTION_TIMEOUT, application_name: 'roster-cli' })
  // pool.end() resolves before its sockets close: an embedded server stopping right
  // after may still reach an idle connection, which must not crash the command.
  /* c8 ignore next -- only in that race */
  pool.on('error', () => {})
  // The client a command holds: its connection failing (a database restarted, a connection terminated)
  // also fails the statement it runs, which the command reports; unheard, the error would end it with a stack trace.
  pool.on('connect', (client) => { client.on('error', () => {}) })
  return {
    pool,
    async close () {
      await pool.end()
      await server.embedded?.stop()
    }
  }
}
