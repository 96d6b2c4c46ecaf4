import t from 'tap'
import { build } from './helper.ts'

t.test('live and ready', async (t) => {
  const app = await build(t)
  t.same((await app.inject({ url: '/health/live' })).json(), { status: 'ok' })
  const ready = await app.inject({ url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok' })
  app.draining = true
  const draining = await app.inject({ url: '/health/ready' })
  t.equal(draining.statusCode, 503)
  t.match(draining.json(), { code: 'ROSTER_SERVICE_UNAVAILABLE', detail: /shutting down/ })
})

t.test('not ready while migrations are pending', async (t) => {
  const app = await build(t, { env: { MIGRATE_ON_START: 'false' } })
  const res = await app.inject({ url: '/health/ready' })
  t.equal(res.statusCode, 503)
  t.match(res.json().detail, /migrations pending \(0 of \d+ applied\)/)
})

t.test('not ready when the database is unreachable', async (t) => {
  const app = await build(t, { databaseUrl: 'postgres://nobody:x@127.0.0.1:1/none', env: { MIGRATE_ON_START: 'false', DB_CONNECTION_TIMEOUT: '500' } })
  const res = await app.inject({ url: '/health/ready' })
  t.equal(res.statusCode, 503)
  t.match(res.json().detail, /database is unreachable/)
})
