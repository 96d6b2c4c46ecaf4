import t from 'tap'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadSecretKey, SecretKeyConfigError, SECRET_KEY_FILE } from '../src/infra/secret-key.ts'
import { build } from './helper.ts'

t.test('SECRET_KEY given: used as is, nothing written', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'roster-secret-'))
  t.equal(loadSecretKey({ secretKey: 'a-given-secret-key-value', production: true, dataDir }), 'a-given-secret-key-value')
  t.throws(() => statSync(join(dataDir, SECRET_KEY_FILE)), { code: 'ENOENT' })
  const app = await build(t, { env: { SECRET_KEY: 'the-configured-secret-key-123' } })
  t.equal(app.secretKey, 'the-configured-secret-key-123', 'exposed as app.secretKey')
})

t.test('SECRET_KEY unset outside production: generated once under DATA_DIR, private, kept', async (t) => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'roster-secret-')), 'nested')
  const first = loadSecretKey({ production: false, dataDir })
  t.match(first, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url')
  const file = join(dataDir, SECRET_KEY_FILE)
  t.equal(statSync(file).mode & 0o777, 0o600, 'only the owner may read it')
  t.equal(loadSecretKey({ production: false, dataDir }), first, 'the same key after a restart')
  t.equal(readFileSync(file, 'utf8').trim(), first)
  t.not(loadSecretKey({ production: false, dataDir: mkdtempSync(join(tmpdir(), 'roster-secret-')) }), first, 'another directory, another key')

  writeFileSync(file, 'short\n')
  t.throws(() => loadSecretKey({ production: false, dataDir }), { name: 'SecretKeyConfigError', message: /does not hold a usable SECRET_KEY/ })

  const app = await build(t, { env: { SECRET_KEY: '', DATA_DIR: mkdtempSync(join(tmpdir(), 'roster-secret-')) } })
  t.match(app.secretKey, /^[A-Za-z0-9_-]{43}$/, 'the app generates one too')
  t.equal(readFileSync(join(app.testConfig.DATA_DIR, SECRET_KEY_FILE), 'utf8').trim(), app.secretKey)
})

t.test('SECRET_KEY unset in production: a clear start-up error', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'roster-secret-'))
  t.throws(() => loadSecretKey({ production: true, dataDir }), { name: 'SecretKeyConfigError', message: /SECRET_KEY \(or SECRET_KEY_FILE\) is required when NODE_ENV=production/ })
  t.ok(new SecretKeyConfigError('x') instanceof Error)
  t.throws(() => statSync(join(dataDir, SECRET_KEY_FILE)), { code: 'ENOENT' }, 'nothing generated')
  const { generateKeyPairSync } = await import('node:crypto')
  const jwt = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  await t.rejects(build(t, { env: { NODE_ENV: 'production', SECRET_KEY: '', JWT_PRIVATE_KEY: jwt, DATA_DIR: dataDir, PUBLIC_URL: 'https://roster.example.com' } }), { message: /SECRET_KEY .* is required when NODE_ENV=production/ })
})
