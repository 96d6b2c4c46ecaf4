import { readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import envSchema from 'env-schema'
import { Ajv, type ErrorObject } from 'ajv'
import { MISSING_SECRET_KEY } from './infra/secret-key.ts'
import { keyProblems } from './sessions/keys.ts'

/**
 * Every setting of Roster, one environment variable each. This schema is the
 * single source of truth: defaults live here, and `Config` (the type of
 * `fastify.config`) is derived from it, so the two cannot drift.
 */
const Bool = (def: boolean, description: string) => Type.Boolean({ default: def, description })
const Int = (def: number, min: number, max: number, description: string) =>
  Type.Integer({ default: def, minimum: min, maximum: max, description })
const Str = (description: string, extra: object = {}) => Type.String({ description, ...extra })
const Enum = <T extends string>(values: readonly T[], def: T, description: string) =>
  Type.Unsafe<T>({ type: 'string', enum: values, default: def, description })

/** REGISTRATION's values. */
export const REGISTRATION_MODES = ['open', 'domain', 'invite', 'closed'] as const
export type Registration = typeof REGISTRATION_MODES[number]

/** METRICS_PORT when NODE_ENV=production and it is not set. */
export const PRODUCTION_METRICS_PORT = 9464

export const ConfigSchema = Type.Object({
  NODE_ENV: Enum(['development', 'production', 'test'], 'development', 'Runtime environment. `production` requires a real JWT key.'),
  HOST: Str('Address to listen on (the container sets 0.0.0.0).', { default: 'localhost' }),
  PORT: Int(3000, 0, 65535, 'HTTP port.'),
  PUBLIC_URL: Type.Optional(Str('Public base URL used in emailed links and token issuer: the address clients use (the proxy\'s), the same on every instance. Required in production; elsewhere default http://localhost:PORT.', { format: 'uri', pattern: '^https?://' })),
  LOG_LEVEL: Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'pino log level.'),
  TRUST_PROXY: Str('Proxy trust: `false`, a hop count (`1` behind one nginx) or a comma-separated list of proxy addresses/CIDRs.', { default: 'false', pattern: '^(false|true|\\d{1,2}|[0-9a-fA-F.:/, ]+)$' }),
  BODY_LIMIT: Int(16384, 1024, 10485760, 'Largest accepted request body in bytes.'),
  REQUEST_TIMEOUT: Int(30000, 0, 600000, 'Milliseconds before a request that has not finished is answered 503 and closed.'),
  SHUTDOWN_DELAY: Int(5000, 0, 600000, 'Milliseconds between SIGTERM and closing the listener: readiness answers 503 meanwhile while requests are served as usual on open connections, so that balancers and proxies move away first; after it, answers on open connections say `Connection: close` and idle connections are closed. SIGINT (Ctrl-C) skips it.'),
  SHUTDOWN_TIMEOUT: Int(10000, 100, 600000, 'Milliseconds allowed for the graceful drain after SHUTDOWN_DELAY: requests in flight, then resources.'),
  CORS_ORIGINS: Str('Comma-separated origins allowed by CORS; empty = CORS off.', { default: '' }),

  DATABASE_URL: Type.Optional(Str('External PostgreSQL URL. Unset (and no POSTGRES_HOST) = embedded PostgreSQL under DATA_DIR.', { pattern: '^postgres(ql)?://' })),
  POSTGRES_HOST: Type.Optional(Str('Legacy: PostgreSQL host (used when DATABASE_URL is unset).')),
  POSTGRES_PORT: Int(5432, 1, 65535, 'Legacy: PostgreSQL port.'),
  POSTGRES_DB: Str('Legacy: database name.', { default: 'roster' }),
  POSTGRES_USER: Str('Legacy: database user.', { default: 'postgres' }),
  POSTGRES_PASSWORD: Str('Legacy: database password (secret).', { default: '' }),
  DATA_DIR: Str('Directory for local state: embedded PostgreSQL data and the generated development signing key and SECRET_KEY.', { default: './.data' }),
  EMBEDDED_PG_PORT: Int(0, 0, 65535, 'Port of the embedded PostgreSQL (0 = any free port, chosen at each start; the URL is logged at start).'),
  DATABASE_LISTEN_URL: Type.Optional(Str('PostgreSQL URL of each instance\'s one LISTEN connection (email outbox wake-ups, ended sessions). Default: the main database URL. Behind PgBouncer in transaction pooling, the PostgreSQL server itself: LISTEN needs a session of its own.', { pattern: '^postgres(ql)?://' })),
  DB_POOL_MAX: Int(10, 1, 1000, 'Connections in the pool.'),
  DB_CONNECTION_TIMEOUT: Int(3000, 100, 600000, 'Milliseconds to wait for a database connection before failing (503).'),
  DB_STATEMENT_TIMEOUT: Int(5000, 100, 3600000, 'Server-side statement timeout in milliseconds (sent as a startup parameter; behind PgBouncer set it there: see operations).'),
  DB_PREPARED_STATEMENTS: Bool(true, 'Named prepared statements, parsed once per connection. `false` behind a pooler that cannot keep them (PgBouncer < 1.21 in transaction pooling): every statement is then sent unnamed.'),
  MIGRATE_ON_START: Bool(true, 'Apply pending migrations when the server starts.'),

  SECRET_KEY: Type.Optional(Str('Secret for Roster\'s own HMACs (list cursors, idempotency fingerprints) and the key encrypting TOTP secrets (changing it voids them); never a token signing key. Required in production; unset elsewhere, generated once and kept in DATA_DIR/secret-key.', { minLength: 16 })),
  JWT_PRIVATE_KEY: Type.Optional(Str('Ed25519 private key (PKCS#8 PEM) signing access tokens. Required in production.')),
  JWT_PREVIOUS_PUBLIC_KEYS: Str('Ed25519 public keys (SPKI PEM, concatenated) that still verify during a rotation.', { default: '' }),
  JWT_ISSUER: Type.Optional(Str('`iss` of access tokens. Default PUBLIC_URL.')),
  JWT_AUDIENCE: Str('`aud` of access tokens.', { default: 'roster' }),
  ACCESS_TOKEN_TTL: Int(900, 30, 86400, 'Access token lifetime in seconds.'),
  SESSION_IDLE_TTL: Int(604800, 60, 31536000, 'Seconds a session lives without a refresh.'),
  SESSION_ABSOLUTE_TTL: Int(2592000, 60, 31536000, 'Seconds a session lives at most.'),
  REFRESH_REUSE_INTERVAL: Int(10, 0, 300, 'Seconds during which a refresh token already used may be presented again (a retry after a lost answer, concurrent refreshes) and still get a new pair for its session; presented later, it ends the session (0 = any second use ends it).'),
  SESSION_CACHE_TTL: Int(2000, 0, 5000, 'Milliseconds a live-session check is cached per instance (revocation bound is 5 s).'),
  ARGON2_MEMORY: Int(19456, 1024, 4194304, 'argon2id memory cost in KiB (OWASP: 19456).'),
  ARGON2_TIME: Int(2, 1, 100, 'argon2id iterations (OWASP: 2).'),
  ARGON2_PARALLELISM: Int(1, 1, 16, 'argon2id parallelism (OWASP: 1).'),
  REGISTRATION: Type.Optional(Type.Unsafe<Registration>({ type: 'string', enum: REGISTRATION_MODES, description: 'Who may become an admin: `open` (anyone registers with POST /auth/register; ADMIN_EMAIL_DOMAINS, when set, limits the addresses), `domain` (only addresses at ADMIN_EMAIL_DOMAINS, which must be set), `invite` (only through an owner\'s invitation), `closed` (no registration, no invitations: admins are made with `npm run create-admin`). Default `open`; required when NODE_ENV=production.' })),
  REGISTRATION_ROLE: Enum(['admin', 'viewer'] as const, 'viewer', 'The role of a self-registered admin (the first admin to confirm becomes an owner whatever this says).'),
  ADMIN_EMAIL_DOMAINS: Str('Comma-separated email domains allowed to register; empty = any (with REGISTRATION=open).', { default: '' }),
  MFA_REQUIRED: Bool(false, 'Require two-factor login: an admin without TOTP can only enrol, read their account and log out (recommended in production).'),
  LOCKOUT_THRESHOLD: Int(10, 1, 1000, 'Failed logins for one email from one client address (IPv6: its /64) within LOCKOUT_WINDOW that lock that email for that address.'),
  LOCKOUT_ACCOUNT_THRESHOLD: Int(50, 1, 100000, 'Failed logins for one email from all addresses within LOCKOUT_WINDOW that lock it for everyone (the ceiling against guessing from many addresses; keep it several times LOCKOUT_THRESHOLD).'),
  LOCKOUT_WINDOW: Int(900, 1, 86400, 'Seconds over which failed logins are counted.'),
  LOCKOUT_DURATION: Int(900, 1, 86400, 'Seconds an account stays locked.'),
  AUTH_RATE_LIMIT: Int(30, 1, 1_000_000_000, 'Requests per client IP per AUTH_RATE_WINDOW on each /auth route.'),
  AUTH_RATE_WINDOW: Int(60, 1, 86400, 'Seconds of the per-IP /auth rate-limit window.'),
  REQUIRE_IF_MATCH: Bool(false, 'Make If-Match mandatory on PATCH/DELETE of users (428 without it).'),

  MAIL_TRANSPORT: Type.Optional(Type.Unsafe<'log' | 'smtp' | 'ses'>({ type: 'string', enum: ['log', 'smtp', 'ses'], description: 'Mail transport. Default `smtp` when MAIL_HOST is set, else `log`.' })),
  MAIL_FROM: Str('Sender address of emails.', { default: 'Roster <no-reply@localhost>' }),
  MAIL_HOST: Type.Optional(Str('SMTP host.')),
  MAIL_PORT: Int(587, 1, 65535, 'SMTP port.'),
  MAIL_USERNAME: Type.Optional(Str('SMTP user.')),
  MAIL_PASSWORD: Type.Optional(Str('SMTP password (secret).')),
  MAIL_SECURE: Bool(false, 'SMTP over TLS from the start (port 465). When false, STARTTLS is used if offered.'),
  MAIL_MAX_ATTEMPTS: Int(8, 1, 100, 'Delivery attempts before an email is marked failed.'),
  MAIL_RETRY_BASE: Int(600000, 10, 86400000, 'Milliseconds before the first retry of an email the provider refused for now (4xx); doubles on each further attempt, ±20 % jitter (8 attempts span about a day).'),
  MAIL_POLL_INTERVAL: Int(5000, 10, 3600000, 'Milliseconds between outbox polls (new rows also wake the dispatcher at once).'),
  MAIL_SEND_TIMEOUT: Int(30000, 100, 600000, 'Milliseconds one send may take.'),
  MAIL_DISPATCHER: Bool(true, 'Run the outbox dispatcher in this instance (false: this instance only queues emails; another one sends them).'),
  WEBHOOK_ALLOW_PRIVATE: Bool(false, 'Let webhooks reach private, loopback and link-local addresses and plain http (tests and local development only: SSRF protection is off).'),
  WEBHOOK_TIMEOUT: Int(10000, 100, 120000, 'Milliseconds one webhook delivery may take (connect, answer and body): a slower receiver is cut off and the try counts as failed.'),
  WEBHOOK_RETRY_BASE: Int(5000, 10, 3600000, 'Milliseconds before the first retry of a failed webhook delivery; doubles on each further attempt, at most an hour, ±20 % jitter.'),
  WEBHOOK_RETRY_WINDOW: Int(86400000, 1000, 604800000, 'Milliseconds a webhook delivery is retried before it is marked failed; an endpoint whose deliveries all failed this long is disabled and its owner emailed.'),
  WEBHOOK_POLL_INTERVAL: Int(5000, 10, 3600000, 'Milliseconds between webhook outbox polls (new deliveries also wake the dispatcher at once).'),
  WEBHOOK_BATCH_SIZE: Int(10, 1, 100, 'Webhook deliveries claimed and sent at once by one dispatcher pass.'),
  WEBHOOK_DISPATCHER: Bool(true, 'Run the webhook dispatcher in this instance (false: this instance only records events; another one delivers them).'),
  IMPORT_MAX_BYTES: Int(67108864, 1048576, 1073741824, 'Largest body of POST /users/import, in bytes (every other route keeps BODY_LIMIT).'),
  AWS_REGION: Str('AWS region for SES and Firehose.', { default: 'us-east-1' }),
  AWS_KEY: Type.Optional(Str('Legacy: AWS access key id (else the SDK default chain).')),
  AWS_SECRET: Type.Optional(Str('Legacy: AWS secret access key (secret).')),
  SES_ENDPOINT: Type.Optional(Str('SES v2 endpoint override (tests, local SES).', { pattern: '^https?://' })),
  SES_CONFIGURATION_SET: Type.Optional(Str('SES configuration set name.')),

  FIREHOSE_DELIVERY_STREAM: Type.Optional(Str('Amazon Data Firehose stream receiving every log line.')),
  FIREHOSE_ENDPOINT: Type.Optional(Str('Firehose endpoint override (tests).', { pattern: '^https?://' })),
  FIREHOSE_BUFFER_BYTES: Int(16777216, 1048576, 1073741824, 'Most bytes of log lines held for Firehose while it is slow or unreachable; past it the oldest lines are dropped (the count is logged to stdout).'),
  METRICS_ENABLED: Bool(true, 'Serve Prometheus metrics.'),
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'Serve /metrics on this separate port instead of the main one (0 = main port). Default 0; 9464 when NODE_ENV=production, where 0 is refused.' })),
  PRESSURE_MAX_EVENT_LOOP_DELAY: Int(1000, 0, 600000, 'Answer 503 while the mean event-loop delay over a sample exceeds this many milliseconds (0 = off).'),
  PRESSURE_MAX_EVENT_LOOP_UTILIZATION: Type.Number({ default: 0, minimum: 0, maximum: 1, description: 'Answer 503 while event-loop utilisation exceeds this fraction, e.g. 0.98 (0 = off).' }),
  PRESSURE_MAX_HEAP_USED: Int(0, 0, 1_000_000_000_000, 'Answer 503 while the V8 heap in use exceeds this many bytes (0 = off).'),
  PRESSURE_MAX_RSS: Int(0, 0, 1_000_000_000_000, 'Answer 503 while the resident set size exceeds this many bytes (0 = off).'),
  PRESSURE_SAMPLE_INTERVAL: Int(1000, 10, 60000, 'Milliseconds between two load samples (event-loop delay, memory).'),
  PRESSURE_RETRY_AFTER: Int(10, 1, 3600, 'Seconds in the Retry-After header of an overload 503.'),

  PRUNE_INTERVAL: Int(600000, 1000, 86400000, 'Milliseconds between two runs of the pruning job (one instance prunes at a time).'),
  SESSION_RETENTION_DAYS: Int(7, 0, 3650, 'Days an ended session (logged out, revoked, expired), with its user agent and address, is kept before it is pruned.'),
  OUTBOX_RETENTION_DAYS: Int(7, 0, 3650, 'Days a sent or failed email is kept in the outbox (without its token), and a delivered or failed webhook delivery with its attempts, before it is pruned.'),
  AUDIT_RETENTION_DAYS: Type.Optional(Type.Integer({ minimum: 1, maximum: 36500, description: 'Days audit events are kept before they are pruned. Unset: kept forever.' }))
}, { additionalProperties: true })

export type Config = Static<typeof ConfigSchema>

/** Variables that may be given as `NAME_FILE=/path` instead of `NAME=value`. */
export const SECRET_VARIABLES = [
  'DATABASE_URL', 'DATABASE_LISTEN_URL', 'POSTGRES_PASSWORD', 'SECRET_KEY', 'JWT_PRIVATE_KEY', 'JWT_PREVIOUS_PUBLIC_KEYS',
  'MAIL_PASSWORD', 'AWS_KEY', 'AWS_SECRET'
] as const

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`)
    this.name = 'ConfigError'
  }
}

type Env = Record<string, string | undefined>

function readDotEnv (path: string): Env {
  try {
    return parseEnv(readFileSync(path, 'utf8'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new ConfigError([`${path}: ${(err as Error).message}`])
  }
}

function resolveFiles (env: Env, problems: string[]): Env {
  const out: Env = { ...env }
  for (const name of SECRET_VARIABLES) {
    const file = env[`${name}_FILE`]
    if (file === undefined || file === '') continue
    if (env[name] !== undefined && env[name] !== '') {
      problems.push(`${name}_FILE: cannot be combined with ${name}`)
      continue
    }
    try {
      out[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      problems.push(`${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code})`)
    }
  }
  return out
}

/** Empty strings count as unset, so `FOO=` in a .env falls back to the default. */
function dropEmpty (env: Env): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v
  return out
}

const ajv = new Ajv({ allErrors: true, coerceTypes: true, useDefaults: true, removeAdditional: true, strict: false })
ajv.addFormat('uri', (s: string) => URL.canParse(s))

function describe (e: ErrorObject, env: Record<string, string>): string {
  const name = e.instancePath.slice(1)
  const given = env[name]
  const shown = given === undefined || (SECRET_VARIABLES as readonly string[]).includes(name) ? '' : ` (got ${JSON.stringify(given)})`
  if (e.keyword === 'enum') return `${name}: must be one of ${(e.params.allowedValues as string[]).join(', ')}${shown}`
  return `${name}: ${e.message as string}${shown}`
}

/**
 * What the variables are wrong about together, beyond each one's own schema:
 * THE checks made before anything starts, for every process (`server`: those
 * only the server needs, production's rules first among them: the settings on
 * which every instance of a fleet must agree, and which a single instance would
 * otherwise invent for itself, a `localhost` issuer and links, keys of its own
 * in DATA_DIR; the commands need none of them). Read from the
 * variables as given (`env`, empty ones dropped), so that they are reported
 * with every schema problem at once.
 */
export function startProblems (env: Record<string, string>, { server }: { server: boolean }): string[] {
  const problems: string[] = []
  const production = env.NODE_ENV === 'production'
  if (env.REGISTRATION === 'domain' && csv(env.ADMIN_EMAIL_DOMAINS ?? '').length === 0) {
    problems.push('REGISTRATION=domain needs ADMIN_EMAIL_DOMAINS: the domains whose addresses may register')
  }
  if (!server) return problems
  if (production && env.REGISTRATION === undefined) {
    problems.push('REGISTRATION must be set when NODE_ENV=production: open (anyone on the internet may register and become an admin), domain (only addresses at ADMIN_EMAIL_DOMAINS), invite (only through an owner\'s invitation) or closed (admins are made with npm run create-admin)')
  }
  if (production && env.PUBLIC_URL === undefined) {
    problems.push('PUBLIC_URL is required when NODE_ENV=production: the address clients reach the service at (the proxy\'s), the same on every instance; it is the issuer of access tokens and the base of emailed links')
  }
  if (production && env.SECRET_KEY === undefined) problems.push(MISSING_SECRET_KEY)
  problems.push(...keyProblems({ privateKey: env.JWT_PRIVATE_KEY, previousPublicKeys: env.JWT_PREVIOUS_PUBLIC_KEYS ?? '', production }))
  if (production && env.METRICS_ENABLED !== 'false' && env.METRICS_PORT === '0') {
    problems.push(`METRICS_PORT must not be 0 when NODE_ENV=production: metrics are served on a port of their own there, never on the API's (default ${PRODUCTION_METRICS_PORT})`)
  }
  return problems
}

/**
 * Reads `.env` (when present; real environment wins), resolves `NAME_FILE`
 * secrets and legacy names, validates everything at once: each variable, then
 * startProblems (`server`: the server's too). Throws ConfigError listing every
 * problem.
 */
export function loadConfig (processEnv: Env = process.env, dotEnvPath = '.env', { server = false }: { server?: boolean } = {}): Config {
  const problems: string[] = []
  const raw = dropEmpty(resolveFiles({ ...readDotEnv(dotEnvPath), ...processEnv }, problems))
  const data: Record<string, unknown> = { ...raw }
  let config: Config | undefined
  try {
    config = envSchema<Config>({ schema: ConfigSchema as TSchema, data, env: false, dotenv: false, ajv })
  } catch (err) {
    problems.push(...(err as { errors: ErrorObject[] }).errors.map((e) => describe(e, raw)))
  }
  problems.push(...startProblems(raw, { server }))
  if (problems.length > 0 || config === undefined) throw new ConfigError(problems)
  return config
}

/**
 * The configuration of a process (server, migrate): on a problem, says every
 * one on stderr, in one line, and exits 1, before anything started.
 */
export function configOrExit (opts: { server?: boolean } = {}): Config {
  try {
    return loadConfig(process.env, '.env', opts)
  } catch (err) {
    process.stderr.write(`roster: ${(err as ConfigError).message}\n`)
    process.exit(1)
  }
}

/** Who may register (REGISTRATION; `open` unless set, which production requires). */
export function registration (config: Config): Registration {
  return config.REGISTRATION ?? 'open'
}

/** The metrics listener's port (0: /metrics on the main port), METRICS_PORT or its default. */
export function metricsPort (config: Config): number {
  return config.METRICS_PORT ?? (config.NODE_ENV === 'production' ? PRODUCTION_METRICS_PORT : 0)
}

/** The PostgreSQL URL to use, or undefined for the embedded server. */
export function databaseUrl (config: Config): string | undefined {
  if (config.DATABASE_URL !== undefined) return config.DATABASE_URL
  if (config.POSTGRES_HOST === undefined) return undefined
  const url = new URL('postgres://')
  url.hostname = config.POSTGRES_HOST
  url.port = String(config.POSTGRES_PORT)
  url.username = config.POSTGRES_USER
  url.password = config.POSTGRES_PASSWORD
  url.pathname = `/${config.POSTGRES_DB}`
  return url.href
}

export function publicUrl (config: Config): string {
  return (config.PUBLIC_URL ?? `http://localhost:${config.PORT}`).replace(/\/+$/, '')
}

export function mailTransport (config: Config): 'log' | 'smtp' | 'ses' {
  return config.MAIL_TRANSPORT ?? (config.MAIL_HOST !== undefined ? 'smtp' : 'log')
}

/**
 * Fastify's `trustProxy` option from TRUST_PROXY. A hop count n trusts the n
 * nearest proxies (behind one nginx: 1), so a client's own X-Forwarded-For
 * entries further left are never believed.
 */
export function trustProxy (value: string): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (value === 'false') return false
  if (value === 'true') return true
  if (/^\d+$/.test(value)) {
    const hops = Number(value)
    return (_address, hop) => hop < hops
  }
  return csv(value)
}

export function csv (value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean)
}
