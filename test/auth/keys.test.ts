/**
 * The signing keys of a fleet: instances on one database record their keys
 * (signing_keys), verify each other's tokens, publish every key in the JWKS,
 * and say in their log where they disagree (another key, another issuer), at
 * start and in the log line of a refused token.
 */
import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { build, createAdmin, createTestDatabase, loginAs, type TestApp } from '../helper.ts'
import { createKeyring, RELOAD_EVERY } from '../../src/sessions/keyring.ts'
import { loadKeys } from '../../src/sessions/keys.ts'
import { enrolTotp } from '../access/helpers.ts'

const privatePem = (): string => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
const whoami = { extend (app: FastifyInstance) { app.get('/test/whoami', { config: { permission: 'self' } }, async (req) => ({ id: req.principal.id })) } }
const warnings = (app: TestApp): string[] => app.logs.lines.filter((l) => l.level === 40 && l.component === 'keys').map((l) => l.msg as string)
const rejected = (app: TestApp): Array<{ reason?: string }> => app.logs.lines.filter((l) => l.msg === 'request rejected' && l.statusCode === 401) as Array<{ reason?: string }>

t.test('one key on every instance: tokens verify everywhere, one key published, nothing to say', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const env = { JWT_PRIVATE_KEY: privatePem(), PUBLIC_URL: 'https://roster.example.com' }
  const a = await build(t, { databaseUrl, env, ...whoami })
  const b = await build(t, { databaseUrl, env, ...whoami })
  const session = await loginAs(a, await createAdmin(a))
  t.equal((await b.inject({ url: '/test/whoami', headers: session.headers })).statusCode, 200)
  t.same((await b.inject({ url: '/.well-known/jwks.json' })).json().keys.map((k: { kid: string }) => k.kid), [a.auth.keys.kid])
  t.same([...warnings(a), ...warnings(b)], [])
  const { rows } = await a.pg.pool.query('SELECT kid, issuer, last_signed_at IS NOT NULL AS signed FROM signing_keys')
  t.same(rows, [{ kid: a.auth.keys.kid, issuer: 'https://roster.example.com', signed: true }], 'recorded once, by kid')
})

t.test('another key on another instance: each verifies the other\'s tokens, the JWKS has both, the log says why that is wrong', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const a = await build(t, { databaseUrl, env: { JWT_PRIVATE_KEY: privatePem() }, ...whoami })
  const fromA = await loginAs(a, await createAdmin(a))
  const b = await build(t, { databaseUrl, env: { JWT_PRIVATE_KEY: privatePem() }, ...whoami })
  t.not(a.auth.keys.kid, b.auth.keys.kid)
  t.match(warnings(b), [new RegExp(`another instance signs access tokens with another key \\(kid ${a.auth.keys.kid}\\) than this one .*the same JWT_PRIVATE_KEY`)], 'said at start by the instance that finds it')
  t.equal((await b.inject({ url: '/test/whoami', headers: fromA.headers })).statusCode, 200, 'B verifies A\'s token: the key is in the database')

  const fromB = await loginAs(b, await createAdmin(b))
  await new Promise((resolve) => setTimeout(resolve, RELOAD_EVERY))
  t.equal((await a.inject({ url: '/test/whoami', headers: fromB.headers })).statusCode, 200, 'A, which started first, looks B\'s key up when it sees it')
  const jwks = (await a.inject({ url: '/.well-known/jwks.json' })).json().keys.map((k: { kid: string }) => k.kid)
  t.same(jwks, [a.auth.keys.kid, b.auth.keys.kid], 'the JWKS publishes the fleet\'s keys, its own signing key first')

  t.same(warnings(a), [], 'A has not beaten yet')
  await a.auth.keyring.beat()
  t.equal(warnings(a).length, 1, 'the heartbeat finds B')
  await a.auth.keyring.beat()
  t.equal(warnings(a).length, 1, 'said once, not at every heartbeat')
})

t.test('the two steps of a login with MFA on two instances holding two keys (a rotation): the mfa_token verifies by its kid', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const oldKey = generateKeyPairSync('ed25519')
  const old = await build(t, { databaseUrl, env: { JWT_PRIVATE_KEY: oldKey.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() } })
  const rotated = await build(t, { databaseUrl, env: { JWT_PRIVATE_KEY: privatePem(), JWT_PREVIOUS_PUBLIC_KEYS: oldKey.publicKey.export({ format: 'pem', type: 'spki' }).toString() } })
  const admin = await createAdmin(old)
  const { totp, recoveryCodes } = await enrolTotp(old, await loginAs(old, admin))
  const firstStep = async (app: TestApp): Promise<string> => {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
    t.equal(res.statusCode, 200)
    return res.json().mfa_token as string
  }
  const kidOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).kid

  const fromOld = await firstStep(old)
  t.equal(kidOf(fromOld), old.auth.keys.kid)
  const second = await rotated.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: fromOld, code: totp.generate() } })
  t.equal(second.statusCode, 200, 'the rotated instance verifies an mfa_token of the old key')
  t.ok(second.json().access_token)

  const fromRotated = await firstStep(rotated)
  t.equal(kidOf(fromRotated), rotated.auth.keys.kid)
  // The old instance started first: it looks the new kid up in the database (at most once per RELOAD_EVERY).
  await new Promise((resolve) => setTimeout(resolve, RELOAD_EVERY))
  const back = await old.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: fromRotated, recovery_code: recoveryCodes[0] } })
  t.equal(back.statusCode, 200, 'and the old instance one of the new key, which it learns from the database')

  const elsewhere = await build(t, { env: { JWT_PRIVATE_KEY: privatePem() } }) // another database: a kid no instance recorded
  const foreignAdmin = await createAdmin(elsewhere)
  await enrolTotp(elsewhere, await loginAs(elsewhere, foreignAdmin))
  const foreign = (await elsewhere.inject({ method: 'POST', url: '/auth/login', payload: { email: foreignAdmin.email, password: foreignAdmin.password } })).json().mfa_token as string
  const refused = await old.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: foreign, code: '000000' } })
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'ROSTER_INVALID_MFA_TOKEN', 'a key no instance holds signs no mfa_token here')

  // Looking a kid up while the database does not answer: the database's 503, not a verdict on the token.
  const lookup = old.auth.keyring.keyFor
  t.teardown(() => { old.auth.keyring.keyFor = lookup })
  old.auth.keyring.keyFor = async () => { throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }) }
  const unavailable = await old.inject({ method: 'POST', url: '/auth/login/mfa', payload: { mfa_token: foreign, code: '000000' } })
  t.equal(unavailable.statusCode, 503)
})

t.test('another issuer: said at start, and in the 401\'s log line', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const key = privatePem()
  const a = await build(t, { databaseUrl, env: { JWT_PRIVATE_KEY: key, PUBLIC_URL: 'http://a.internal:3000' }, ...whoami })
  const session = await loginAs(a, await createAdmin(a))
  const b = await build(t, { databaseUrl, env: { JWT_PRIVATE_KEY: key, PUBLIC_URL: 'http://b.internal:3000' }, ...whoami })
  t.match(warnings(b), [/an instance issued access tokens as http:\/\/a\.internal:3000 .*this instance issues and accepts http:\/\/b\.internal:3000 only.*set the same PUBLIC_URL/])
  const res = await b.inject({ url: '/test/whoami', headers: session.headers })
  t.equal(res.statusCode, 401)
  t.equal(res.json().detail, 'The access token is invalid or expired', 'the client learns nothing of it')
  t.match(rejected(b).at(-1), { reason: /token issuer http:\/\/a\.internal:3000 is not this instance's http:\/\/b\.internal:3000: PUBLIC_URL \(or JWT_ISSUER\) differs/ })
})

t.test('a kid no instance recorded: refused, and the log line says so', async (t) => {
  const app = await build(t, whoami)
  const session = await loginAs(app, await createAdmin(app))
  const elsewhere = await build(t, { env: { JWT_PRIVATE_KEY: privatePem() } }) // another database
  const foreign = await loginAs(elsewhere, await createAdmin(elsewhere))
  const res = await app.inject({ url: '/test/whoami', headers: foreign.headers })
  t.equal(res.statusCode, 401)
  t.match(rejected(app).at(-1), { reason: new RegExp(`token kid ${elsewhere.auth.keys.kid} unknown here \\(known: ${app.auth.keys.kid}\\): signed by an instance with another JWT_PRIVATE_KEY`) })
  const again = await app.inject({ url: '/test/whoami', headers: foreign.headers })
  t.equal(again.statusCode, 401, 'within RELOAD_EVERY: refused without asking the database again')

  const [header, payload] = session.accessToken.split('.') as [string, string]
  const expired = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), exp: 1 })).toString('base64url')
  await app.inject({ url: '/test/whoami', headers: { authorization: `Bearer ${header}.${expired}.AAAA` } })
  t.match(rejected(app).at(-1), { reason: /^Authorization token is invalid: / }, 'otherwise the verifier\'s reason')
  await app.inject({ url: '/test/whoami', headers: { authorization: 'Bearer e30.e30.AAAA' } })
  t.match(rejected(app).at(-1), { reason: /^token kid undefined unknown here/ }, 'a token without a kid')
  await app.inject({ url: '/test/whoami', headers: { authorization: 'Bearer x.y.z' } })
  t.match(rejected(app).at(-1), { reason: /^token kid undefined unknown here/ }, 'a token that is not JSON')
})

t.test('a rotation under way is said as such; a heartbeat that fails is logged and retried', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const oldKey = generateKeyPairSync('ed25519')
  const old = await build(t, { databaseUrl, env: { JWT_PRIVATE_KEY: oldKey.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() } })
  const rotated = await build(t, { databaseUrl, env: { JWT_PRIVATE_KEY: privatePem(), JWT_PREVIOUS_PUBLIC_KEYS: oldKey.publicKey.export({ format: 'pem', type: 'spki' }).toString() } })
  t.same(warnings(rotated), [], 'no warning')
  t.ok(rotated.logs.lines.some((l) => l.level === 30 && l.component === 'keys' && new RegExp(`still signs access tokens with the previous key ${old.auth.keys.kid} \\(a key rotation under way\\)`).test(l.msg as string)))

  const keyring = createKeyring({
    repository: {
      recordKeys: async () => { throw new Error('database gone') },
      publishedKeys: async () => []
    },
    keys: loadKeys({ privateKey: privatePem(), previousPublicKeys: '', production: false, dataDir: '/nonexistent' }),
    issuer: 'x',
    accessTokenTtl: 900,
    log: rotated.log
  })
  await keyring.beat()
  t.ok(rotated.logs.lines.some((l) => l.level === 40 && l.msg === 'could not record the signing keys (tried again in a minute)'))
  keyring.start()
  keyring.stop()
})
