import { randomBytes } from 'node:crypto'
import type tap from 'tap'
import { Writable } from 'node:stream'
import pg from 'pg'
import Fastify, { type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import app from '../src/app.ts'
import { loadConfig, type Config } from '../src/config.ts'
import { serverOptions } from '../src/server-options.ts'
import { argon2Params, hashPassword } from '../src/infra/passwords.ts'

export interface TestContext {
  after: (fn: () => unknown) => void
}

/** A tap subtest (what `t.test`'s callback is given), for helpers that assert. */
export type Test = Parameters<Parameters<typeof tap.test>[0]>[0]

/** The server all test files share (started by test/run.ts); each file gets its own database on it. */
export function testServerUrl (): string {
  const url = process.env.TEST_DATABASE_URL
  if (url === undefined || url === '') throw new Error('TEST_DATABASE_URL is not set: run the tests with `npm test`')
  return url
}

/** Creates a fresh, empty database for one test file and drops it when the file ends. */
export async function createTestDatabase (t: TestContext): Promise<string> {
  const server = new URL(testServerUrl())
  const name = `roster_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: server.href })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  t.after(async () => {
    const c = new pg.Client({ connectionString: server.href })
    await c.connect()
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await c.end()
  })
  const url = new URL(server.href)
  url.pathname = `/${name}`
  return url.href
}

/** Captured log lines of an app built by `build`. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = []
  override _write (chunk: Buffer, _enc: string, cb: () => void): void {
    for (const line of chunk.toString().split('\n')) if (line !== '') this.lines.push(JSON.parse(line) as Record<string, unknown>)
    cb()
  }

  text (): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n')
  }
}

export interface BuildOptions {
  env?: Record<string, string>
  /** Reuse a database (e.g. to restart an app on the same data); default a fresh one. */
  databaseUrl?: string
  /** Called after the app is registered and before it is ready: add test-only routes here. */
  extend?: (app: FastifyInstance) => void
}

export type TestApp = FastifyInstance & { logs: LogCapture, testConfig: Config, databaseUrl: string }

/** A test-speed argon2 and a quiet, captured log; everything else as in production. */
export const TEST_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'info',
  ARGON2_MEMORY: '1024',
  ARGON2_TIME: '1',
  SECRET_KEY: 'test-secret-key-0123456789abcdef',
  // No load shedding: on a shared machine starved of CPU, an app's own start (schemas compiled, keys
  // loaded) can hold its event loop past the 1 s default, and its first requests would be shed.
  // test/pressure.test.ts turns it on with its own thresholds (as test/fleet does off for its servers).
  PRESSURE_MAX_EVENT_LOOP_DELAY: '0',
  // No webhook leaves a test by accident (the fuzzer creates endpoints with random public URLs): the webhook tests turn it on.
  WEBHOOK_DISPATCHER: 'false'
}

/**
 * Builds the real app, with the same server options as production, against a
 * fresh database of its own, and closes it when the test ends.
 */
export async function build (t: TestContext, opts: BuildOptions = {}): Promise<TestApp> {
  const databaseUrl = opts.databaseUrl ?? await createTestDatabase(t)
  const config = loadConfig({ ...TEST_ENV, DATABASE_URL: databaseUrl, ...opts.env }, '/dev/null')
  const logs = new LogCapture()
  const fastify = Fastify(serverOptions(config, { stdout: logs })).withTypeProvider<TypeBoxTypeProvider>()
  await fastify.register(app, { config })
  opts.extend?.(fastify)
  t.after(() => fastify.close())
  await fastify.ready()
  return Object.assign(fastify, { logs, testConfig: config, databaseUrl }) as unknown as TestApp
}

export interface TestAdmin {
  id: string
  email: string
  name: string
  password: string
}

let adminCounter = 0

/**
 * Inserts a confirmed admin directly (password hashed as the app does), an
 * owner unless `role` says otherwise (tests of other things need every permission).
 */
export async function createAdmin (app: FastifyInstance, overrides: Partial<Omit<TestAdmin, 'id'>> & { confirmed?: boolean, role?: 'owner' | 'admin' | 'viewer' } = {}): Promise<TestAdmin> {
  const n = `${process.pid}-${++adminCounter}`
  const email = overrides.email ?? `admin-${n}@example.com`
  const name = overrides.name ?? `admin-${n}`
  const password = overrides.password ?? 'a long enough test password'
  const passwordHash = await hashPassword(password, argon2Params(app.config))
  const { rows } = await app.pg.pool.query<{ id: string }>(
    'INSERT INTO admins (email, name, password_hash, confirmed_at, role) VALUES ($1, $2, $3, $4, $5) RETURNING id',
    [email, name, passwordHash, overrides.confirmed === false ? null : new Date(), overrides.role ?? 'owner']
  )
  return { id: (rows[0] as { id: string }).id, email, name, password }
}

export interface TestSession {
  adminId: string
  sessionId: string
  accessToken: string
  refreshToken: string
  /** `{ authorization: 'Bearer …' }` for inject. */
  headers: { authorization: string }
}

let loginCounter = 0

/**
 * Logs an admin in through the real POST /auth/login. Each call comes from an
 * address of its own (unless `meta.ip` names one), so that the per-IP /auth
 * rate limit never gets in the way of a test.
 */
export async function loginAs (app: FastifyInstance, admin: { email: string, password: string }, meta: { userAgent?: string, ip?: string } = {}): Promise<TestSession> {
  const n = ++loginCounter
  const res = await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email: admin.email, password: admin.password },
    remoteAddress: meta.ip ?? `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
    headers: meta.userAgent === undefined ? {} : { 'user-agent': meta.userAgent }
  })
  if (res.statusCode !== 200) throw new Error(`loginAs: POST /auth/login answered ${res.statusCode}: ${res.body}`)
  const pair = res.json<{ access_token?: string, refresh_token: string }>()
  if (pair.access_token === undefined) throw new Error('loginAs: this admin has two-factor login: use loginWithMfa')
  return session(pair as { access_token: string, refresh_token: string })
}

/** A session from a token pair (the access token's claims read, not verified). */
export function session (pair: { access_token: string, refresh_token: string }): TestSession {
  const claims = JSON.parse(Buffer.from(pair.access_token.split('.')[1] as string, 'base64url').toString()) as { sub: string, sid: string }
  return { adminId: claims.sub, sessionId: claims.sid, accessToken: pair.access_token, refreshToken: pair.refresh_token, headers: { authorization: `Bearer ${pair.access_token}` } }
}

/**
 * THE polling helper: waits until `condition` holds, checking it every
 * `interval` ms, and fails after `timeout` ms naming `what`.
 */
export async function waitUntil (condition: () => boolean | Promise<boolean>, { timeout = 10_000, what = 'the condition', interval = 20 }: { timeout?: number, what?: string, interval?: number } = {}): Promise<void> {
  const deadline = Date.now() + timeout
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}

/** An email written to the log by the log transport (the default in tests). */
export interface LoggedEmail { to: string, subject: string, link: string, text: string, token: string }

/**
 * Waits (up to `timeout` ms) until the log transport has sent `count` emails to
 * `to`, and returns the last of them with the token of its link. The outbox row
 * no longer holds the token once sent: read it here.
 */
export async function waitForEmail (app: TestApp, to: string, count = 1, timeout = 15_000): Promise<LoggedEmail> {
  const sent = (): Array<Omit<LoggedEmail, 'token'>> => app.logs.lines.map((l) => l.email as Omit<LoggedEmail, 'token'> | undefined).filter((e) => e?.to === to) as Array<Omit<LoggedEmail, 'token'>>
  await waitUntil(() => sent().length >= count, { what: `email #${count} to ${to}`, timeout })
    .catch(() => { throw new Error(`no email #${count} to ${to} within ${timeout} ms`) })
  const email = sent()[count - 1] as Omit<LoggedEmail, 'token'>
  return { ...email, token: new URL(email.link).searchParams.get('token') as string }
}

/**
 * A fingerprint of every table's rows (a hash and a count per table): two equal
 * fingerprints mean a request changed nothing in the database. Bookkeeping that
 * every request may touch is left out: the /auth rate-limit counters
 * (rate_limit_hits) and the fleet's record of signing keys (signing_keys).
 */
export async function fingerprint (app: FastifyInstance): Promise<Record<string, string>> {
  const tables = (await app.pg.pool.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT IN ('rate_limit_hits', 'signing_keys') ORDER BY tablename")).rows.map((r) => r.tablename)
  const parts = tables.map((tb) => `(SELECT coalesce(sum(hashtext(x::text)), 0)::text || ':' || count(*) FROM "${tb}" x) AS "${tb}"`)
  return (await app.pg.pool.query(`SELECT ${parts.join(', ')}`)).rows[0] as Record<string, string>
}
