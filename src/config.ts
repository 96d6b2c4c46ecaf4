import { readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import envSchema from 'env-schema'
import { Ajv, type ErrorObject } from 'ajv'

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

export const ConfigSchema = Type.Object({
  NODE_ENV: Enum(['development', 'production', 'test'], 'development', 'Runtime environment. `production` requires a real JWT key.'),
  HOST: Str('Address to listen on (the container sets 0.0.0.0).', { default: 'localhost' }),
  PORT: Int(3000, 0, 65535, 'HTTP port.'),
  PUBLIC_URL: Type.Optional(Str('Public base URL used in emailed links and token issuer. Default http://localhost:PORT.', { format: 'uri', pattern: '^https?://' })),
  LOG_LEVEL: Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'pino log level.'),
  TRUST_PROXY: Str('Proxy trust: `false`, a hop count (`1` behind one nginx) or a comma-separated list of proxy addresses/CIDRs.', { default: 'false', pattern: '^(false|true|\\d{1,2}|[0-9a-fA-F.:/, ]+)$' }),
  BODY_LIMIT: Int(16384, 1024, 10485760, 'Largest accepted request body in bytes.'),
  REQUEST_TIMEOUT: Int(30000, 0, 600000, 'Milliseconds before a request that has not finished is answered 503 and closed.'),
  SHUTDOWN_TIMEOUT: Int(10000, 100, 600000, 'Milliseconds allowed for a graceful drain on SIGTERM.'),
  CORS_ORIGINS: Str('Comma-separated origins allowed by CORS; empty = CORS off.', { default: '' }),

  DATABASE_URL: Type.Optional(Str('External PostgreSQL URL. Unset (and no POSTGRES_HOST) = embedded PostgreSQL under DATA_DIR.', { pattern: '^postgres(ql)?://' })),
  POSTGRES_HOST: Type.Optional(Str('Legacy: PostgreSQL host (used when DATABASE_URL is unset).')),
  POSTGRES_PORT: Int(5432, 1, 65535, 'Legacy: PostgreSQL port.'),
  POSTGRES_DB: Str('Legacy: database name.', { default: 'roster' }),
  POSTGRES_USER: Str('Legacy: database user.', { default: 'postgres' }),
  POSTGRES_PASSWORD: Str('Legacy: database password (secret).', { default: '' }),
  DATA_DIR: Str('Directory for local state: embedded PostgreSQL data and the generated development signing key and SECRET_KEY.', { default: './.data' }),
  EMBEDDED_PG_PORT: Int(0, 0, 65535, 'Port of the embedded PostgreSQL (0 = any free port, chosen at each start).'),
  DB_POOL_MAX: Int(10, 1, 1000, 'Connections in the pool.'),
  DB_CONNECTION_TIMEOUT: Int(3000, 100, 600000, 'Milliseconds to wait for a database connection before failing (503).'),
  DB_STATEMENT_TIMEOUT: Int(5000, 100, 3600000, 'Server-side statement timeout in milliseconds.'),
  MIGRATE_ON_START: Bool(true, 'Apply pending migrations when the server starts.'),

  SECRET_KEY: Type.Optional(Str('Secret for Roster\'s own HMACs (list cursors, idempotency fingerprints) and the key encrypting TOTP secrets (changing it voids them); never a token signing key. Required in production; unset elsewhere, generated once and kept in DATA_DIR/secret-key.', { minLength: 16 })),
  JWT_PRIVATE_KEY: Type.Optional(Str('Ed25519 private key (PKCS#8 PEM) signing access tokens. Required in production.')),
  JWT_PREVIOUS_PUBLIC_KEYS: Str('Ed25519 public keys (SPKI PEM, concatenated) that still verify during a rotation.', { default: '' }),
  JWT_ISSUER: Type.Optional(Str('`iss` of access tokens. Default PUBLIC_URL.')),
  JWT_AUDIENCE: Str('`aud` of access tokens.', { default: 'roster' }),
  ACCESS_TOKEN_TTL: Int(900, 30, 86400, 'Access token lifetime in seconds.'),
  SESSION_IDLE_TTL: Int(604800, 60, 31536000, 'Seconds a session lives without a refresh.'),
  SESSION_ABSOLUTE_TTL: Int(2592000, 60, 31536000, 'Seconds a session lives at most.'),
  SESSION_CACHE_TTL: Int(2000, 0, 5000, 'Milliseconds a live-session check is cached per instance (revocation bound is 5 s).'),
  ARGON2_MEMORY: Int(19456, 1024, 4194304, 'argon2id memory cost in KiB (OWASP: 19456).'),
  ARGON2_TIME: Int(2, 1, 100, 'argon2id iterations (OWASP: 2).'),
  ARGON2_PARALLELISM: Int(1, 1, 16, 'argon2id parallelism (OWASP: 1).'),
  REGISTRATION: Enum(['open', 'invite', 'closed'], 'open', 'Who may become an admin: `open` (anyone registers with POST /auth/register), `invite` (only through an owner\'s invitation), `closed` (no registration, no invitations: npm run create-admin only).'),
  REGISTRATION_ROLE: Enum(['admin', 'viewer'] as const, 'viewer', 'The role of a self-registered admin (the first admin to confirm becomes an owner whatever this says).'),
  ADMIN_EMAIL_DOMAINS: Str('Comma-separated email domains allowed to register; empty = any.', { default: '' }),
  MFA_REQUIRED: Bool(false, 'Require two-factor login: an admin without TOTP can only enrol, read their account and log out (recommended in production).'),
  LOCKOUT_THRESHOLD: Int(10, 1, 1000, 'Failed logins within LOCKOUT_WINDOW that lock an account.'),
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
  METRICS_PORT: Int(0, 0, 65535, 'Serve /metrics on this separate port instead of the main one (0 = main port).'),
  PRESSURE_MAX_EVENT_LOOP_DELAY: Int(1000, 0, 600000, 'Answer 503 while the mean event-loop delay over a sample exceeds this many milliseconds (0 = off).'),
  PRESSURE_MAX_EVENT_LOOP_UTILIZATION: Type.Number({ default: 0, minimum: 0, maximum: 1, description: 'Answer 503 while event-loop utilisation exceeds this fraction, e.g. 0.98 (0 = off).' }),
  PRESSURE_MAX_HEAP_USED: Int(0, 0, 1_000_000_000_000, 'Answer 503 while the V8 heap in use exceeds this many bytes (0 = off).'),
  PRESSURE_MAX_RSS: Int(0, 0, 1_000_000_000_000, 'Answer 503 while the resident set size exceeds this many bytes (0 = off).'),
  PRESSURE_SAMPLE_INTERVAL: Int(1000, 10, 60000, 'Milliseconds between two load samples (event-loop delay, memory).'),
  PRESSURE_RETRY_AFTER: Int(10, 1, 3600, 'Seconds in the Retry-After header of an overload 503.')
}, { additionalProperties: true })

export type Config = Static<typeof ConfigSchema>

/** Variables that may be given as `NAME_FILE=/path` instead of `NAME=value`. */
export const SECRET_VARIABLES = [
  'DATABASE_URL', 'POSTGRES_PASSWORD', 'SECRET_KEY', 'JWT_PRIVATE_KEY', 'JWT_PREVIOUS_PUBLIC_KEYS',
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
 * Reads `.env` (when present; real environment wins), resolves `NAME_FILE`
 * secrets and legacy names, validates everything at once.
 * Throws ConfigError listing every offending variable.
 */
export function loadConfig (processEnv: Env = process.env, dotEnvPath = '.env'): Config {
  const problems: string[] = []
  const raw = dropEmpty(resolveFiles({ ...readDotEnv(dotEnvPath), ...processEnv }, problems))
  const data: Record<string, unknown> = { ...raw }
  let config: Config | undefined
  try {
    config = envSchema<Config>({ schema: ConfigSchema as TSchema, data, env: false, dotenv: false, ajv })
  } catch (err) {
    problems.push(...(err as { errors: ErrorObject[] }).errors.map((e) => describe(e, raw)))
  }
  if (problems.length > 0 || config === undefined) throw new ConfigError(problems)
  return config
}

/** The configuration of a process (server, migrate): on a problem, says it on stderr and exits 1. */
export function configOrExit (): Config {
  try {
    return loadConfig()
  } catch (err) {
    process.stderr.write(`roster: ${(err as ConfigError).message}\n`)
    process.exit(1)
  }
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
