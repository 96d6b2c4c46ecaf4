import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, ConfigError, databaseUrl, publicUrl, mailTransport, trustProxy, csv } from '../src/config.ts'

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

t.test('production: what every instance must share is required, every missing one named at once', async (t) => {
  const err = t.throws(() => loadConfig({ NODE_ENV: 'production', PORT: 'abc' }, NO_DOTENV)) as ConfigError
  t.same(err.problems.map((p) => p.split(':')[0]), ['PORT'], 'invalid values first: the rest cannot be judged yet')
  const missing = t.throws(() => loadConfig({ NODE_ENV: 'production' }, NO_DOTENV)) as ConfigError
  t.same(missing.problems.map((p) => p.split(':')[0]), ['PUBLIC_URL', 'JWT_PRIVATE_KEY', 'SECRET_KEY'])
  t.match(missing.message, /PUBLIC_URL: required when NODE_ENV=production: the address clients reach the service at \(the proxy's\), the same on every instance/)
  const complete = loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'https://roster.example.com', JWT_PRIVATE_KEY: 'pem', SECRET_KEY: 'a-secret-key-of-some-length' }, NO_DOTENV)
  t.equal(publicUrl(complete), 'https://roster.example.com')
  t.equal(loadConfig({ NODE_ENV: 'development' }, NO_DOTENV).PUBLIC_URL, undefined, 'outside production, a default')
  t.equal(loadConfig({ NODE_ENV: 'production' }, NO_DOTENV, { server: false }).NODE_ENV, 'production', 'the commands (migrate, create-admin) need none of them')
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
