/** `npm run migrate`: applies pending migrations to the configured database (embedded when none is set). */
import pg from 'pg'
import { join } from 'node:path'
import { loadConfig, ConfigError, databaseUrl } from '../config.ts'
import { startEmbeddedPostgres, type EmbeddedServer } from '../../db/embedded.ts'
import { runMigrations, appliedMigrations } from '../../db/migrate.ts'
import { resolveFromRoot } from '../paths.ts'

let config
try {
  config = loadConfig()
} catch (err) {
  process.stderr.write(`roster: ${(err as ConfigError).message}\n`)
  process.exit(1)
}
let embedded: EmbeddedServer | undefined
let url = databaseUrl(config)
if (url === undefined) {
  embedded = await startEmbeddedPostgres(join(resolveFromRoot(config.DATA_DIR), 'postgres'), { port: config.EMBEDDED_PG_PORT })
  url = embedded.url
}
const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: config.DB_CONNECTION_TIMEOUT })
let code = 0
try {
  await runMigrations(pool)
  process.stdout.write(`roster: migrations applied (${await appliedMigrations(pool)} in total)\n`)
} catch (err) {
  process.stderr.write(`roster: migration failed: ${(err as Error).message}\n`)
  code = 1
} finally {
  await pool.end()
  await embedded?.stop()
}
process.exit(code)
