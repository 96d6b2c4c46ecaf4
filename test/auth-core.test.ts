import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as edSign, createHmac, type KeyObject } from 'node:crypto'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyRequest } from 'fastify'
import { build, createAdmin, loginAs, type TestApp } from './helper.ts'
import { loadKeys, KeyConfigError } from '../src/sessions/keys.ts'
import { hmac, safeEqual, hashToken, randomToken } from '../src/infra/crypto.ts'
import { needsRehash, hashPassword, verifyPassword, dummyHash } from '../src/infra/passwords.ts'

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

/** A JWT signed by hand, to try what the service must refuse. */
function forge (header: Record<string, unknown>, payload: Record<string, unknown>, signer: (input: string) => Buffer | string): string {
  const input = `${b64(header)}.${b64(payload)}`
  const sig = signer(input)
  return `${input}.${typeof sig === 'string' ? sig : sig.toString('base64url')}`
}

/** The authenticated admin of a request, as a test route answers it. */
function whoami (req: FastifyRequest): { id: string, sessionId: string } {
  const p = req.principal
  return { id: p.id, sessionId: p.kind === 'admin' ? p.sessionId : '' }
}

async function protectedApp (t: Parameters<typeof build>[0], env: Record<string, string> = {}): Promise<TestApp> {
  return await build(t, {
    env,
    extend (app) {
      app.get('/test/whoami', { config: { permission: 'self' } }, async (req) => whoami(req))
    }
  })
}

t.test('a route is authenticated unless it is public', async (t) => {
  const app = await protectedApp(t)
  const admin = await createAdmin(app)
  const session = await loginAs(app, admin)

  const ok = await app.inject({ url: '/test/whoami', headers: session.headers })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { id: admin.id, sessionId: session.sessionId })
  t.equal(ok.headers['cache-control'], 'no-store')

  const none = await app.inject({ url: '/test/whoami' })
  t.equal(none.statusCode, 401)
  t.match(none.headers['content-type'], /problem\+json/)
  t.match(none.json(), { code: 'ROSTER_UNAUTHORIZED', detail: /access token is required/ })
  t.match(none.headers['www-authenticate'], /^Bearer/)

  t.equal((await app.inject({ url: '/' })).statusCode, 200, 'public route')
  t.equal((await app.inject({ url: '/apidocs/json' })).statusCode, 200, 'docs are public')
  t.equal((await app.inject({ url: '/nope' })).statusCode, 404, 'unknown routes are 404, not 401')
})

t.test('tokens carry the documented header and claims', async (t) => {
  const app = await protectedApp(t, { JWT_ISSUER: 'https://roster.example.com' })
  const admin = await createAdmin(app)
  const { accessToken, sessionId } = await loginAs(app, admin, { userAgent: 'x'.repeat(600), ip: '127.0.0.1' })
  const { rows } = await app.pg.pool.query('SELECT user_agent, ip FROM sessions WHERE id = $1', [sessionId])
  t.same(rows, [{ user_agent: 'x'.repeat(512), ip: '127.0.0.1' }], 'session remembers its client, user agent capped')
  const [h, p] = accessToken.split('.') as [string, string]
  const header = JSON.parse(Buffer.from(h, 'base64url').toString())
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString())
  t.same(header, { alg: 'EdDSA', typ: 'at+jwt', kid: app.auth.keys.kid })
  t.same(Object.keys(payload).sort(), ['aud', 'auth_time', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub'])
  t.equal(payload.sub, admin.id)
  t.equal(payload.sid, sessionId)
  t.equal(payload.iss, 'https://roster.example.com')
  t.equal(payload.aud, 'roster')
  t.equal(payload.exp - payload.iat, 900)
})

t.test('forged, foreign and ended tokens are refused', async (t) => {
  const app = await protectedApp(t)
  const admin = await createAdmin(app)
  const session = await loginAs(app, admin)
  const key = createPrivateKey(app.auth.keys.privatePem)
  const now = Math.floor(Date.now() / 1000)
  const claims = { sub: admin.id, sid: session.sessionId, jti: 'j', iat: now, exp: now + 600, iss: app.auth.issuer, aud: app.auth.audience }
  const header = { alg: 'EdDSA', typ: 'at+jwt', kid: app.auth.keys.kid }
  const ed = (k = key) => (input: string) => edSign(null, Buffer.from(input), k)
  const other = generateKeyPairSync('ed25519').privateKey
  const publicPem = createPublicKey(key).export({ format: 'pem', type: 'spki' }).toString()

  const cases: Record<string, string> = {
    'well-formed control': forge(header, claims, ed()),
    'alg none': forge({ ...header, alg: 'none' }, claims, () => ''),
    'HS256 with the public key as secret': forge({ ...header, alg: 'HS256' }, claims, (i) => createHmac('sha256', publicPem).update(i).digest()),
    'wrong typ': forge({ ...header, typ: 'JWT' }, claims, ed()),
    'no typ': forge({ alg: 'EdDSA', kid: header.kid }, claims, ed()),
    'wrong iss': forge(header, { ...claims, iss: 'https://evil.example' }, ed()),
    'wrong aud': forge(header, { ...claims, aud: 'other' }, ed()),
    expired: forge(header, { ...claims, iat: now - 1000, exp: now - 10 }, ed()),
    'not yet valid': forge(header, { ...claims, nbf: now + 600 }, ed()),
    'another key, same kid': forge(header, claims, ed(other)),
    'unknown kid': forge({ ...header, kid: 'nope' }, claims, ed()),
    'missing sid': forge(header, { ...claims, sid: undefined }, ed()),
    garbage: 'not.a.jwt',
    'another session': forge(header, { ...claims, sid: '00000000-0000-4000-8000-000000000000' }, ed()),
    "another admin's sub on this session": forge(header, { ...claims, sub: '00000000-0000-4000-8000-000000000000' }, ed())
  }
  for (const [name, token] of Object.entries(cases)) {
    const res = await app.inject({ url: '/test/whoami', headers: { authorization: `Bearer ${token}` } })
    t.equal(res.statusCode, name === 'well-formed control' ? 200 : 401, name)
  }
  t.equal((await app.inject({ url: '/test/whoami', headers: { authorization: `Basic ${session.accessToken}` } })).statusCode, 401, 'not a bearer')
  t.equal((await app.inject({ url: '/test/whoami', headers: { authorization: `Bearer ${session.refreshToken}` } })).statusCode, 401, 'a refresh token is not an access token')

  await app.pg.pool.query('UPDATE sessions SET revoked_at = now() WHERE id = $1', [session.sessionId])
  await app.auth.forgetSessions([session.sessionId])
  const revoked = await app.inject({ url: '/test/whoami', headers: session.headers })
  t.equal(revoked.statusCode, 401)
  t.match(revoked.json().detail, /session .* has ended/)
})

t.test('a revoked session is refused on every instance within the cache bound', async (t) => {
  const first = await protectedApp(t, { SESSION_CACHE_TTL: '300' })
  const second = await build(t, { databaseUrl: first.databaseUrl, env: { SESSION_CACHE_TTL: '300' }, extend (app) { app.get('/test/whoami', { config: { permission: 'self' } }, async (req) => whoami(req)) } })
  const admin = await createAdmin(first)
  const session = await loginAs(first, admin)
  t.equal((await second.inject({ url: '/test/whoami', headers: session.headers })).statusCode, 200, 'cached as live on the second instance')
  await first.pg.pool.query('UPDATE sessions SET revoked_at = now() WHERE id = $1', [session.sessionId])
  await new Promise((resolve) => setTimeout(resolve, 350))
  t.equal((await second.inject({ url: '/test/whoami', headers: session.headers })).statusCode, 401)
})

t.test('keys: generated once outside production, kept, and rotated', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'roster-keys-'))
  const first = loadKeys({ previousPublicKeys: '', production: false, dataDir })
  t.equal(statSync(join(dataDir, 'jwt-ed25519.pem')).mode & 0o777, 0o600, 'private key file is private')
  const again = loadKeys({ previousPublicKeys: '', production: false, dataDir })
  t.equal(again.kid, first.kid, 'the same key after a restart')

  t.throws(() => loadKeys({ previousPublicKeys: '', production: true, dataDir }), { name: 'KeyConfigError', message: /JWT_PRIVATE_KEY .* is required when NODE_ENV=production/ }, 'production needs a real key')
  t.ok(new KeyConfigError('x') instanceof Error)
  t.throws(() => loadKeys({ privateKey: 'nonsense', previousPublicKeys: '', production: true, dataDir }), /not a usable Ed25519 private key/)
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
  t.throws(() => loadKeys({ privateKey: rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), previousPublicKeys: '', production: true, dataDir }), /must be an Ed25519 key/)
  t.throws(() => loadKeys({ privateKey: readFileSync(join(dataDir, 'jwt-ed25519.pem'), 'utf8'), previousPublicKeys: createPublicKey(rsa.privateKey).export({ format: 'pem', type: 'spki' }).toString(), production: true, dataDir }), /JWT_PREVIOUS_PUBLIC_KEYS/)

  const next = generateKeyPairSync('ed25519')
  const rotated = loadKeys({
    privateKey: next.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    previousPublicKeys: first.verifying[0]?.pem as string,
    production: true,
    dataDir
  })
  t.same(rotated.verifying.map((k) => k.kid), [rotated.kid, first.kid])
  t.same(Object.keys(rotated.verifying[0]?.jwk ?? {}).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x'])
})

t.test('tokens signed with the previous key keep working during a rotation', async (t) => {
  const oldKey = generateKeyPairSync('ed25519')
  const newKey = generateKeyPairSync('ed25519')
  const pem = (k: KeyObject) => k.export({ format: 'pem', type: 'pkcs8' }).toString()
  const before = await protectedApp(t, { JWT_PRIVATE_KEY: pem(oldKey.privateKey) })
  const admin = await createAdmin(before)
  const session = await loginAs(before, admin)
  const after = await build(t, {
    databaseUrl: before.databaseUrl,
    env: { JWT_PRIVATE_KEY: pem(newKey.privateKey), JWT_PREVIOUS_PUBLIC_KEYS: oldKey.publicKey.export({ format: 'pem', type: 'spki' }).toString() },
    extend (app) { app.get('/test/whoami', { config: { permission: 'self' } }, async (req) => whoami(req)) }
  })
  t.equal((await after.inject({ url: '/test/whoami', headers: session.headers })).statusCode, 200)
  await before.close()
  await after.close()
  // The old key is in no configuration any more; the fleet still verifies it until no instance has held it for ACCESS_TOKEN_TTL.
  const whoamiRoute = { extend (app: FastifyInstance) { app.get('/test/whoami', { config: { permission: 'self' } }, async (req) => whoami(req)) } }
  const soon = await build(t, { databaseUrl: before.databaseUrl, env: { JWT_PRIVATE_KEY: pem(newKey.privateKey) }, ...whoamiRoute })
  t.equal((await soon.inject({ url: '/test/whoami', headers: session.headers })).statusCode, 200, 'the old key, held by an instance less than ACCESS_TOKEN_TTL ago, still verifies')
  await soon.pg.pool.query("UPDATE signing_keys SET last_seen_at = now() - interval '1 day', last_signed_at = now() - interval '1 day' WHERE kid <> $1", [soon.auth.keys.kid])
  const dropped = await build(t, { databaseUrl: before.databaseUrl, env: { JWT_PRIVATE_KEY: pem(newKey.privateKey) }, ...whoamiRoute })
  t.equal((await dropped.inject({ url: '/test/whoami', headers: session.headers })).statusCode, 401, 'once no instance has held the old key for longer than ACCESS_TOKEN_TTL')
  t.same((await dropped.inject({ url: '/.well-known/jwks.json' })).json().keys.map((k: { kid: string }) => k.kid), [dropped.auth.keys.kid], 'nor does the JWKS publish it')
})

t.test('crypto and password helpers', async (t) => {
  t.equal(randomToken().length, 43, '32 bytes base64url')
  t.equal(hashToken('x'), hashToken('x'))
  t.not(hashToken('x'), 'x')
  t.equal(hmac('k', 'd'), hmac('k', 'd'))
  t.equal(safeEqual('abc', 'abc'), true)
  t.equal(safeEqual('abc', 'abd'), false)
  t.equal(safeEqual('abc', 'ab'), false)
  const params = { memoryCost: 1024, timeCost: 1, parallelism: 1 }
  const stored = await hashPassword('password one two', params)
  t.match(stored, /^\$argon2id\$v=19\$m=1024,t=1,p=1\$/)
  t.equal(await verifyPassword(stored, 'password one two'), true)
  t.equal(await verifyPassword(stored, 'password one three'), false)
  t.equal(needsRehash(stored, params), false)
  t.equal(needsRehash(stored, { ...params, memoryCost: 2048 }), true)
  t.equal(await verifyPassword(await dummyHash(params), 'anything'), false)
})
