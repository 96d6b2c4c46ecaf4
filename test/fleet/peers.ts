/**
 * The real programs a fleet runs beside Roster, on loopback, as an
 * unprivileged user when the tests run as root: Debian's nginx (with
 * deploy/nginx.conf, only its upstream, listen address and scratch paths
 * templated) and Debian's PgBouncer 1.18 in transaction pooling. .ci/run
 * installs both; a missing one fails the test, never skips it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../db/embedded.ts'
import { rootDir } from '../../src/infra/paths.ts'
import { waitUntil, type TestContext } from '../helper.ts'

const which = (names: string[]): string | undefined => names.find((p) => existsSync(p))

export const NGINX = which(['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'])
export const PGBOUNCER = which(['/usr/sbin/pgbouncer', '/usr/local/bin/pgbouncer', '/usr/bin/pgbouncer'])

/** Resolves once something accepts connections on `port`. */
export async function listening (port: number, what: string, timeout = 10_000): Promise<void> {
  await waitUntil(async () => await new Promise<boolean>((resolve) => {
    const probe = net.connect(port, '127.0.0.1')
    probe.on('connect', () => { probe.destroy(); resolve(true) })
    probe.on('error', () => resolve(false))
  }), { what, timeout })
}

/** deploy/nginx.conf with its upstream servers and listen address replaced, and its scratch files in `dir`. */
export function templateNginxConf (conf: string, upstreams: string[], listen: string, dir: string): string {
  const replace = (text: string, from: string, to: string): string => {
    if (!text.includes(from)) throw new Error(`deploy/nginx.conf no longer contains "${from}": update test/fleet/peers.ts`)
    return text.replace(from, to)
  }
  // Debian's nginx (1.22) has no `resolve`; the upstreams are addresses here anyway.
  let out = replace(conf, 'server app:3000 resolve;', upstreams.map((u) => `server ${u};`).join('\n        '))
  out = replace(out, 'resolver 127.0.0.11 valid=10s ipv6=off;', '')
  out = replace(out, 'listen 80;', `listen ${listen};`)
  // /dev/stdout and /dev/stderr cannot be opened when they are sockets (as under a test runner): files instead.
  out = replace(out, 'error_log /dev/stderr notice;', `error_log ${join(dir, 'error.log')} notice;`)
  out = replace(out, 'access_log /dev/stdout roster;', `access_log ${join(dir, 'access.log')} roster;`)
  // As a user who cannot write nginx's compiled-in temp folders, too.
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `    ${k}_temp_path ${join(dir, k)};`).join('\n')
  return replace(out, 'http {\n', `http {\n${temp}\n`)
}

export interface Nginx {
  port: number
  dir: string
  process: ChildProcess
  /** nginx's error log so far. */
  errors: () => string
}

/** Runs deploy/nginx.conf in front of `upstreams` (host:port), checked with `nginx -t` first; stopped when the test ends. */
export async function startNginx (t: TestContext & { teardown: (fn: () => unknown) => void }, upstreams: string[]): Promise<Nginx> {
  if (NGINX === undefined) throw new Error('nginx is not installed: `apt-get install -y nginx` (.ci/run installs it when missing)')
  const dir = mkdtempSync(join(tmpdir(), 'roster-nginx-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, templateNginxConf(readFileSync(join(rootDir, 'deploy', 'nginx.conf'), 'utf8'), upstreams, `127.0.0.1:${port}`, dir))
  const args = ['-p', dir, '-c', conf, '-e', join(dir, 'error.log'), '-g', `daemon off; pid ${join(dir, 'nginx.pid')};`]
  const check = spawnSync(NGINX, ['-t', ...args], { encoding: 'utf8' })
  if (check.status !== 0) throw new Error(`nginx -t refuses the configuration: ${check.stderr}`)
  const child = spawn(NGINX, args, { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGQUIT') })
  await listening(port, 'nginx to listen')
  const errors = (): string => existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''
  return { port, dir, process: child, errors }
}

export interface PgBouncer {
  port: number
  /** The URL of `database` through PgBouncer (same user and password as the server's). */
  url: (database: string) => string
  /** PgBouncer's log so far. */
  log: () => string
}

/**
 * PgBouncer 1.18 in transaction pooling in front of the PostgreSQL server of
 * `serverUrl`, every database passed through, `poolSize` server connections
 * per database and user, SCRAM for clients (userlist.txt), as the docs
 * describe it: statement_timeout is not a startup parameter PgBouncer passes
 * on, so it is ignored there and set by `connect_query` on each server
 * connection instead.
 */
export async function startPgBouncer (t: TestContext & { teardown: (fn: () => unknown) => void }, serverUrl: string, opts: { poolSize?: number } = {}): Promise<PgBouncer> {
  if (PGBOUNCER === undefined) throw new Error('pgbouncer is not installed: `apt-get install -y pgbouncer` (.ci/run installs it when missing)')
  const server = new URL(serverUrl)
  const user = decodeURIComponent(server.username)
  const password = decodeURIComponent(server.password)
  const dir = mkdtempSync(join(tmpdir(), 'roster-pgbouncer-'))
  chmodSync(dir, 0o755) // read by the unprivileged user it runs as under root
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  writeFileSync(join(dir, 'userlist.txt'), `"${user}" "${password}"\n`, { mode: 0o644 })
  writeFileSync(join(dir, 'pgbouncer.ini'), [
    '[databases]',
    `* = host=${server.hostname} port=${server.port || 5432} connect_query='SET statement_timeout = 5000'`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    // A server that trusts without a password (CI's service container): no password to check here either.
    `auth_type = ${password === '' ? 'trust' : 'scram-sha-256'}`,
    `auth_file = ${join(dir, 'userlist.txt')}`,
    `admin_users = ${user}`,
    'pool_mode = transaction',
    `default_pool_size = ${opts.poolSize ?? 10}`,
    'max_client_conn = 1000',
    'ignore_startup_parameters = statement_timeout,extra_float_digits',
    ''
  ].join('\n'), { mode: 0o644 })
  const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), join(dir, 'pgbouncer.ini')]
  const child = spawn(PGBOUNCER, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr.on('data', (d) => { log += String(d) })
  t.teardown(() => { child.kill('SIGTERM') })
  await listening(port, `PgBouncer to listen (${log})`)
  return {
    port,
    url: (database) => `postgres://${server.username}:${server.password}@127.0.0.1:${port}/${database}`,
    log: () => log
  }
}
