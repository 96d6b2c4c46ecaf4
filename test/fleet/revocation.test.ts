/**
 * Ended sessions pushed to every instance (NOTIFY roster_sessions_ended on one,
 * the LISTEN connection of each): refused elsewhere at once, not after the
 * session cache's TTL; a lost LISTEN connection empties the cache when it
 * comes back; an announcement that cannot be sent leaves the TTL as the bound.
 */
import t from 'tap'
import pg from 'pg'
import { build, createAdmin, createTestDatabase, loginAs, testServerUrl, waitUntil, type Test, type TestApp, type TestContext } from '../helper.ts'
import { clientKey, endedPayloads, LiveSessionCache, SESSION_CACHE_BYTES, SESSION_CACHE_ENTRIES } from '../../src/sessions/live-cache.ts'
import { Listener } from '../../src/infra/notifications.ts'

/** Well above any wait below: what refuses a token on the other instance is the notification, not the cache's end. */
const TTL = 5000
const env = { SESSION_CACHE_TTL: String(TTL) }

/** Two instances on one database, each listening (its cache is emptied when its LISTEN connection is up). */
async function pair (t: TestContext): Promise<[TestApp, TestApp]> {
  const databaseUrl = await createTestDatabase(t)
  const apps: [TestApp, TestApp] = [await build(t, { databaseUrl, env }), await build(t, { databaseUrl, env })]
  for (const app of apps) await waitUntil(() => app.logs.lines.some((l) => l.msg === 'database listener connected'), { what: 'the LISTEN connection' })
  return apps
}

const me = async (app: TestApp, headers: { authorization: string }): Promise<number> => (await app.inject({ url: '/auth/me', headers })).statusCode

/** The token live on `app` (its check cached there from now), as an assertion; when it was checked. */
async function cachedOn (t: Test, app: TestApp, headers: { authorization: string }, what = 'live on B, and now cached there'): Promise<number> {
  const checkedAt = performance.now()
  t.equal(await me(app, headers), 200, what)
  return checkedAt
}

/**
 * `app` refuses the token, and did before its cached check (made at `checkedAt`)
 * could have ended: the notification refused it, not the TTL. The wait itself is
 * generous (a slow machine fails the second assertion, not the test's end).
 */
async function refusedBeforeTtl (t: Test, app: TestApp, headers: { authorization: string }, checkedAt: number, what: string): Promise<void> {
  await waitUntil(async () => await me(app, headers) === 401, { what, timeout: 15_000, interval: 5 }).catch(() => {}) // asserted below
  const after = performance.now() - checkedAt
  t.equal(await me(app, headers), 401, what)
  t.ok(after < TTL, `${what}: ${after.toFixed(0)} ms after B cached its check, before the cache would end (${TTL} ms)`)
}

t.test('a logout, an ended session, a password change on one instance: refused on the other at once', async (t) => {
  const [a, b] = await pair(t)
  const admin = await createAdmin(a)
  const session = await loginAs(a, admin)
  const loggedIn = await cachedOn(t, b, session.headers)
  t.equal((await a.inject({ method: 'POST', url: '/auth/logout', headers: session.headers })).statusCode, 204)
  await refusedBeforeTtl(t, b, session.headers, loggedIn, 'B refuses the logged-out token')

  const first = await loginAs(a, admin)
  const second = await loginAs(a, admin)
  const secondChecked = await cachedOn(t, b, second.headers)
  t.equal((await a.inject({ method: 'DELETE', url: `/auth/sessions/${second.sessionId}`, headers: first.headers })).statusCode, 204)
  await refusedBeforeTtl(t, b, second.headers, secondChecked, 'B refuses the ended session')

  const other = await loginAs(a, admin)
  const otherChecked = await cachedOn(t, b, other.headers)
  const changed = await a.inject({ method: 'PATCH', url: '/auth/me', headers: first.headers, payload: { password: 'a brand new long password', currentPassword: admin.password } })
  t.equal(changed.statusCode, 200, changed.body)
  await refusedBeforeTtl(t, b, other.headers, otherChecked, 'B refuses a session ended by the password change')
  t.equal(await me(b, first.headers), 200, 'the session that changed the password lives on')
})

t.test('the LISTEN connection lost: the cache is emptied when it comes back; an announcement that fails is logged', async (t) => {
  const [a, b] = await pair(t)
  const session = await loginAs(a, await createAdmin(a))
  const checkedAt = await cachedOn(t, b, session.headers, 'cached by B')
  // Ended without any announcement (as if it were missed), then B's LISTEN connection is cut.
  await a.pg.pool.query("UPDATE sessions SET revoked_at = now(), revoked_reason = 'test' WHERE id = $1", [session.sessionId])
  t.equal(await me(b, session.headers), 200, 'B still trusts its cache')
  await b.pg.pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'roster-listener' AND datname = current_database()")
  await waitUntil(() => b.logs.lines.some((l) => l.msg === 'database listener reconnected'), { what: 'B\'s listener to reconnect', timeout: 15_000 })
  const after = performance.now() - checkedAt
  t.equal(await me(b, session.headers), 401, 'B forgot its cache when it reconnected')
  t.ok(after < TTL, `reconnected ${after.toFixed(0)} ms after B cached its check, before the cache would end (${TTL} ms)`)

  // The database refusing connections: the announcement fails, the logout stands, the failure is logged.
  const fresh = await loginAs(a, await createAdmin(a))
  const database = new URL(a.databaseUrl).pathname.slice(1)
  const admin = new pg.Client({ connectionString: testServerUrl() })
  await admin.connect()
  t.teardown(async () => {
    await admin.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`)
    await admin.end()
  })
  await a.pg.pool.query('UPDATE sessions SET revoked_at = now() WHERE id = $1', [fresh.sessionId])
  await admin.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS false`)
  await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [database])
  await a.auth.forgetSessions([fresh.sessionId])
  await admin.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`)
  t.ok(a.logs.lines.some((l) => l.msg === 'could not announce ended sessions to the other instances' && l.level === 40))
})

t.test('announcements in payloads under 8000 bytes; a bounded cache; channel names checked; a pooler without a LISTEN URL warned about', async (t) => {
  const ids = Array.from({ length: 450 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`)
  const payloads = endedPayloads(ids)
  t.same(payloads.map((p) => p.split(',').length), [150, 150, 150])
  t.ok(payloads.every((p) => Buffer.byteLength(p) < 8000))
  t.same(payloads.join(',').split(','), ids)
  t.ok(endedPayloads(ids.map(clientKey)).every((p) => Buffer.byteLength(p) < 8000), 'API clients\' keys, the longest, too')

  const cache = new LiveSessionCache<string>(1000)
  for (let i = 0; i < SESSION_CACHE_ENTRIES; i++) cache.remember(`s${i}`, 'a', `found ${i}`, 0)
  t.equal(cache.size, SESSION_CACHE_ENTRIES)
  t.equal(cache.get('s1', 'a', 999), 'found 1')
  t.equal(cache.get('s1', 'b', 999), undefined, 'another admin\'s')
  t.equal(cache.get('s1', 'a', 1000), undefined, 'expired')
  cache.remember('s0', 'a', 'found again', 1)
  cache.remember('one more', 'a', 'found', 0)
  t.equal(cache.size, SESSION_CACHE_ENTRIES, 'full: bounded')
  t.equal(cache.get('s1', 'a', 999), undefined, 'the entry checked longest ago went')
  t.equal(cache.get('s0', 'a', 999), 'found again', 'one checked again is young again')
  t.equal(cache.get('one more', 'a', 999), 'found')

  // A check in flight while keys were forgotten (it may have read a session the notification ended): not remembered.
  const mark = cache.mark
  cache.forget(['elsewhere'])
  cache.remember('in flight', 'a', 'read before the end', 2, mark)
  t.equal(cache.get('in flight', 'a', 999), undefined, 'a check that overlapped a forget is not kept')
  const cleared = cache.mark
  cache.clear()
  cache.remember('in flight', 'a', 'read before the reconnection', 2, cleared)
  t.equal(cache.get('in flight', 'a', 999), undefined, 'nor one that overlapped a clear')
  cache.remember('in flight', 'a', 'read after', 2, cache.mark)
  t.equal(cache.get('in flight', 'a', 999), 'read after', 'one begun after is')

  // Bounded by bytes too: large findings (many scopes) fill the bytes before the entries.
  const large = new LiveSessionCache<string[]>(1000)
  const scopes = Array.from({ length: 40 }, (_, i) => `scope:number-${i}`)
  for (let i = 0; i < SESSION_CACHE_ENTRIES; i++) large.remember(`client:${i}`, 'c', scopes, 0)
  t.ok(large.size < SESSION_CACHE_ENTRIES, `fewer entries (${large.size}) when each is large`)
  t.ok(large.bytes <= SESSION_CACHE_BYTES, `at most SESSION_CACHE_BYTES (${large.bytes})`)
  t.same(large.get(`client:${SESSION_CACHE_ENTRIES - 1}`, 'c', 999), scopes, 'the newest kept')
  t.equal(large.get('client:0', 'c', 999), undefined, 'the oldest gone')

  const unnamed = await build(t, { env: { DB_PREPARED_STATEMENTS: 'false' } })
  t.ok(unnamed.logs.lines.some((l) => l.level === 40 && /^DB_PREPARED_STATEMENTS=false \(behind a transaction pooler\?\) but no DATABASE_LISTEN_URL/.test(l.msg as string)), 'a likely pooler without a LISTEN URL is warned about')
  const listener = new Listener({ connectionString: 'postgres://nowhere.invalid/x', connectionTimeout: 100, retryDelay: 10, heartbeat: 1000, log: unnamed.log })
  t.throws(() => { listener.subscribe('drop table; --', { notify: () => {}, connected: () => {} }) }, { message: /not a channel name/ })
  listener.start() // nothing subscribed: no connection at all
  await listener.stop()
})
