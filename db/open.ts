import { join } from 'node:path'
import pg from 'pg'
import { databaseUrl, type Config } from '../src/config.ts'
import { resolveFromRoot } from '../src/infra/paths.ts'
import { startEmbeddedPostgres, type EmbeddedServer } from './embedded.ts'

export interface DatabaseServer {
  /** The connection string. */
  url: string
  /** The embedded server this process started, or null when DATABASE_URL (or POSTGRES_*) names one. */
  embedded: EmbeddedServer | null
}

/**
 * THE startup sequence's first half: the PostgreSQL server named by
 * DATABASE_URL (or legacy POSTGRES_*), or an embedded one under
 * DATA_DIR/postgres, started here. Used by the server (plugins/db.ts, which
 * makes the pool through @fastify/postgres) and by the commands (openDatabase).
 */
export async function databaseServer (config: Config, opts: { starting?: (dir: string) => void, log?: (line: string) => void } = {}): Promise<DatabaseServer> {
  const url = databaseUrl(config)
  if (url !== undefined) return { url, embedded: null }
  const dir = join(resolveFromRoot(config.DATA_DIR), 'postgres')
  opts.starting?.(dir)
  const embedded = await startEmbeddedPostgres(dir, { port: config.EMBEDDED_PG_PORT, log: opts.log })
  return { url: embedded.url, embedded }
}

/** The commands' database (migrate, create-admin): the server, and a one-connection pool on it; `close` ends both. */
export async function openDatabase (config: Config): Promise<{ pool: pg.Pool, close: () => Promise<void> }> {
  const server = await databaseServer(config)
  const pool = new pg.Pool({ connectionString: server.url, max: 1, connectionTimeoutMillis: config.DB_CONNECTION_TIMEOUT })
  // pool.end() resolves before its sockets close: an embedded server stopping right
  // after may still reach an idle connection, which must not crash the command.
  /* c8 ignore next -- only in that race */
  pool.on('error', () => {})
  return {
    pool,
    async close () {
      await pool.end()
      await server.embedded?.stop()
    }
  }
}
