import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairSync } from 'node:crypto'
import { loadConfig, ConfigError, databaseUrl, publicUrl, mailTransport, trustProxy, csv, metricsPort, registration, startProblems } from '../src/config.ts'

const NO_DOTENV = '/nonexistent/.env'

t.test('defaults apply with an empty environment', async (t) => {
  const c = loadConfig({}, NO_DOTENV)
  t.equal(c.PORT, 3000)
  t.equal(c.NODE_ENV, 'development')
  t.equal(c.MIGRATE_ON_START, true)
  t.equal(c.BODY_LIMIT, 16384)
  t.equal(databaseUrl(c), undefined, 'no database configured means embedded')
  t.equal(publicUrl(c), 'http://localhost:3000')
  t.equal(mailTransport(c), 'log')
})

t.test('values are coerced from strings', async (t) => {
  const c = loadConfig({ PORT: '8080', MIGRATE_ON_START: 'false', PUBLIC_URL: 'https://api.example.com/' }, NO_DOTENV)
  t.equal(c.PORT, 8080)
  t.equal(c.MIGRATE_ON_START, false)
  t.equal(publicUrl(c), 'https://api.example.com')
})

t.test('every offending variable is named in one error', async (t) => {
  const err = t.throws(() => loadConfig({ PORT: 'abc', NODE_ENV: 'prod', DATABASE_URL: 'mysql://x', SECRET_KEY: 'short' }, NO_DOTENV)) as ConfigError
  t.ok(err instanceof ConfigError)
  t.equal(err.problems.length, 4)
  t.match(err.message, /PORT: must be integer \(got "abc"\)/)
  t.match(err.message, /NODE_ENV: must be one of development, production, test/)
  t.match(err.message, /DATABASE_URL: must match pattern/)
  t.match(err.message, /SECRET_KEY: must NOT have fewer than 16 characters/)
  t.notMatch(err.message, /short|mysql/, 'secret values are never echoed')
})

t.test('.env is read, the real environment wins, empty values fall back to defaults', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'roster-env-'))
  const file = join(dir, '.env')
  writeFileSync(file, 'PORT=4000\nLOG_LEVEL=debug\nHOST=\n')
  const c = loadConfig({ LOG_LEVEL: 'warn' }, file)
  t.equal(c.PORT, 4000)
  t.equal(c.LOG_LEVEL, 'warn')
  t.equal(c.HOST, 'localhost')
})

t.test('an unreadable .env is reported', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'roster-env-'))
  t.throws(() => loadConfig({}, dir), ConfigError)
})

t.test('NAME_FILE supplies secrets', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'roster-secret-'))
  const file = join(dir, 'secret')
  writeFileSync(file, 'a-very-long-secret-key-value\n')
  t.equal(loadConfig({ SECRET_KEY_FILE: file }, NO_DOTENV).SECRET_KEY, 'a-very-long-secret-key-value', 'trailing newline stripped')
  const missing = t.throws(() => loadConfig({ MAIL_PASSWORD_FILE: join(dir, 'nope') }, NO_DOTENV)) as ConfigError
  t.match(missing.message, /MAIL_PASSWORD_FILE: cannot read .*ENOENT/)
  const both = t.throws(() => loadConfig({ SECRET_KEY: 'x'.repeat(20), SECRET_KEY_FILE: file }, NO_DOTENV)) as ConfigError
  t.match(both.message, /SECRET_KEY_FILE: cannot be combined with SECRET_KEY/)
})

t.test('legacy POSTGRES_* build the database URL', async (t) => {
  const c = loadConfig({ POSTGRES_HOST: 'db', POSTGRES_PORT: '6543', POSTGRES_DB: 'app', POSTGRES_USER: 'u', POSTGRES_PASSWORD: 'p@ss' }, NO_DOTENV)
  t.equal(databaseUrl(c), 'postgres://u:p%40ss@db:6543/app')
  t.equal(databaseUrl(loadConfig({ DATABASE_URL: 'postgres://x@y/z', POSTGRES_HOST: 'db' }, NO_DOTENV)), 'postgres://x@y/z', 'DATABASE_URL wins')
})

t.test('mail transport defaults to smtp when MAIL_HOST is set', async (t) => {
  t.equal(mailTransport(loadConfig({ MAIL_HOST: 'smtp.example.com' }, NO_DOTENV)), 'smtp')
  t.equal(mailTransport(loadConfig({ MAIL_HOST: 'smtp.example.com', MAIL_TRANSPORT: 'ses' }, NO_DOTENV)), 'ses')
})

t.test('TRUST_PROXY forms', async (t) => {
  t.equal(trustProxy('false'), false)
  t.equal(trustProxy('true'), true)
  const hops = trustProxy('1') as (a: string, hop: number) => boolean
  t.equal(hops('10.0.0.1', 0), true)
  t.equal(hops('10.0.0.1', 1), false)
  t.same(trustProxy('10.0.0.0/8, 127.0.0.1'), ['10.0.0.0/8', '127.0.0.1'])
  t.same(csv(' a, ,b '), ['a', 'b'])
})

t.test('docs/configuration.md and .env.example document every variable', async (t) => {
  const { readFileSync } = await import('node:fs')
  const { ConfigSchema } = await import('../src/config.ts')
  const reference = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8')
  const example = readFileSync(new URL('../.env.example', import.meta.url), 'utf8')
  for (const name of Object.keys(ConfigSchema.properties)) {
    t.match(reference, `| \`${name}\` |`, `${name} in docs/configuration.md`)
    t.match(example, new RegExp(`^#?${name}=`, 'm'), `${name} in .env.example`)
  }
})

t.test('production: the server refuses to start until registration, secrets and keys are set, all said at once', async (t) => {
  const err = t.throws(() => loadConfig({ NODE_ENV: 'production', PORT: 'abc' }, NO_DOTENV, { server: true })) as ConfigError
  t.equal(err.problems.length, 5, err.message)
  t.match(err.message, /^invalid configuration: PORT: must be integer/)
  t.match(err.message, /REGISTRATION must be set when NODE_ENV=production: open \(anyone on the internet may register and become an admin\), domain .* or closed/)
  t.match(err.message, /PUBLIC_URL is required when NODE_ENV=production: the address clients reach the service at \(the proxy's\), the same on every instance/)
  t.match(err.message, /SECRET_KEY \(or SECRET_KEY_FILE\) is required when NODE_ENV=production/)
  t.match(err.message, /JWT_PRIVATE_KEY \(or JWT_PRIVATE_KEY_FILE\) is required when NODE_ENV=production/)
  t.doesNotThrow(() => loadConfig({ NODE_ENV: 'production' }, NO_DOTENV), 'migrate and create-admin need none of it')

  const key = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  const ok = { NODE_ENV: 'production', REGISTRATION: 'closed', PUBLIC_URL: 'https://roster.example.com', SECRET_KEY: 'a-production-secret-key', JWT_PRIVATE_KEY: key }
  const c = loadConfig(ok, NO_DOTENV, { server: true })
  t.equal(publicUrl(c), 'https://roster.example.com')
  t.equal(loadConfig({ NODE_ENV: 'development' }, NO_DOTENV, { server: true }).PUBLIC_URL, undefined, 'outside production, a default')
  t.equal(registration(c), 'closed')
  t.equal(metricsPort(c), 9464, 'metrics on a port of their own in production')
  t.equal(metricsPort(loadConfig({ ...ok, METRICS_PORT: '9100' }, NO_DOTENV, { server: true })), 9100)
  t.match(startProblems({ ...ok, METRICS_PORT: '0' }, { server: true }), [/METRICS_PORT must not be 0 when NODE_ENV=production/])
  t.same(startProblems({ ...ok, METRICS_PORT: '0', METRICS_ENABLED: 'false' }, { server: true }), [], 'no metrics at all is fine')
  t.match(startProblems({ ...ok, JWT_PRIVATE_KEY: generateKeyPairSync('x25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() }, { server: true }), [/JWT_PRIVATE_KEY is not a usable Ed25519 private key/])
  t.match(startProblems({ JWT_PREVIOUS_PUBLIC_KEYS: '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----' }, { server: true }), [/JWT_PREVIOUS_PUBLIC_KEYS holds a key that is not a usable/], 'keys are checked in any environment')
  t.same(startProblems({ NODE_ENV: 'production', REGISTRATION: 'open' }, { server: false }), [], 'only the server needs them')

  const outside = loadConfig({}, NO_DOTENV)
  t.equal(registration(outside), 'open', 'outside production, open by default')
  t.equal(metricsPort(outside), 0)
})

t.test('REGISTRATION=domain needs ADMIN_EMAIL_DOMAINS', async (t) => {
  t.throws(() => loadConfig({ REGISTRATION: 'domain' }, NO_DOTENV), /REGISTRATION=domain needs ADMIN_EMAIL_DOMAINS/)
  t.equal(registration(loadConfig({ REGISTRATION: 'domain', ADMIN_EMAIL_DOMAINS: 'example.com' }, NO_DOTENV)), 'domain')
  t.throws(() => loadConfig({ REGISTRATION: 'invite-only' }, NO_DOTENV), /REGISTRATION: must be one of open, domain, invite, closed/)
})
