import t from 'tap'
import { build, waitUntil } from './helper.ts'

t.test('a saturated event loop: new requests get 503 problem+json with Retry-After; liveness and metrics still answer', async (t) => {
  let saturating = false
  const app = await build(t, {
    env: { PRESSURE_MAX_EVENT_LOOP_DELAY: '30', PRESSURE_SAMPLE_INTERVAL: '50', PRESSURE_RETRY_AFTER: '7' },
    extend (app) {
      // Test-only: keeps the loop busy in 100 ms blocking slices (a CPU-bound handler would do the same).
      app.post('/test/saturate', { config: { public: true } }, async () => {
        saturating = true
        const slice = (): void => {
          const end = Date.now() + 100
          while (Date.now() < end) { /* busy */ }
          if (saturating) setImmediate(slice)
        }
        setImmediate(slice)
        return { saturating }
      })
    }
  })
  t.teardown(() => { saturating = false })
  await waitUntil(() => !app.isUnderPressure(), { what: 'calm after start', interval: 5 })
  t.equal((await app.inject({ url: '/' })).statusCode, 200)

  t.same((await app.inject({ method: 'POST', url: '/test/saturate' })).json(), { saturating: true })
  await waitUntil(() => app.isUnderPressure(), { what: 'under pressure', interval: 5 })
  t.ok(app.memoryUsage().eventLoopDelay > 30, 'the sampled event-loop delay is over the threshold')

  const shed = await app.inject({ url: '/' })
  t.equal(shed.statusCode, 503)
  t.match(shed.headers['content-type'], /^application\/problem\+json/)
  t.equal(shed.headers['retry-after'], '7')
  t.equal(shed.headers['x-content-type-options'], 'nosniff', 'the security headers come first')
  t.match(shed.json(), { status: 503, code: 'ROSTER_OVERLOADED', type: '/problems/overloaded', title: 'Service Unavailable', instance: '/', detail: /overloaded/ })
  const ready = await app.inject({ url: '/health/ready' })
  t.equal(ready.statusCode, 503, 'readiness is shed too: a balancer stops sending work here')

  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200, 'liveness is never shed: the process is alive')
  const metrics = await app.inject({ url: '/metrics' })
  t.equal(metrics.statusCode, 200, 'metrics are never shed: they show the overload')
  t.match(metrics.body, /http_requests_total\{method="GET",route="\/",status_code="503"\} 1/)

  const logged = app.logs.lines.filter((l) => l.msg === 'request shed: overloaded')
  t.ok(logged.length >= 2)
  t.ok(logged.every((l) => l.level === 40 && l.err === undefined), 'shed requests log at warn, without a stack')

  saturating = false
  await waitUntil(() => !app.isUnderPressure(), { what: 'calm again', interval: 5 })
  t.equal((await app.inject({ url: '/' })).statusCode, 200, 'served again once the loop is free')
})

t.test('every threshold at 0: no load shedding at all', async (t) => {
  const app = await build(t, { env: { PRESSURE_MAX_EVENT_LOOP_DELAY: '0' } })
  t.equal(app.isUnderPressure(), false)
  t.equal((await app.inject({ url: '/' })).statusCode, 200)
})
