/** The /webhooks management routes: create, list (paged), get, change, delete; 404s; owners only; audited. */
import t from 'tap'
import { build, createAdmin, loginAs } from '../helper.ts'

t.test('create, list, get, change, delete', async (t) => {
  const app = await build(t, { env: { WEBHOOK_DISPATCHER: 'false' } })
  const owner = await loginAs(app, await createAdmin(app))
  const headers = owner.headers
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ method: 'POST', url: '/webhooks', headers, payload: { url: `https://hooks${i}.example.com/in`, events: ['user.created'], description: `hook ${i}` } })
    t.equal(res.statusCode, 201)
    t.equal(res.headers.location, `/webhooks/${res.json<{ id: string }>().id}`)
    t.match(res.json(), { url: `https://hooks${i}.example.com/in`, events: ['user.created'], description: `hook ${i}`, enabled: true, disabledReason: null, failingSince: null })
    ids.push(res.json<{ id: string }>().id)
  }
  const first = await app.inject({ url: '/webhooks?limit=2', headers })
  t.same(first.json<Array<{ id: string }>>().map((w) => w.id), ids.slice(0, 2), 'oldest first')
  const next = /<([^>]+)>; rel="next"/.exec(first.headers.link as string)?.[1] as string
  const second = await app.inject({ url: next, headers })
  t.same(second.json<Array<{ id: string }>>().map((w) => w.id), ids.slice(2))
  t.equal(second.headers.link, undefined)
  t.ok(!first.body.includes('secret'), 'no secret in a list')

  const patched = await app.inject({ method: 'PATCH', url: `/webhooks/${ids[0] as string}`, headers, payload: { events: ['user.deleted', 'admin.created'], description: 'renamed', url: 'https://other.example.com/' } })
  t.match(patched.json(), { events: ['user.deleted', 'admin.created'], description: 'renamed', url: 'https://other.example.com/' })
  const off = await app.inject({ method: 'PATCH', url: `/webhooks/${ids[0] as string}`, headers, payload: { enabled: false } })
  t.match(off.json(), { enabled: false, disabledReason: null })
  t.equal((await app.inject({ method: 'PATCH', url: `/webhooks/${ids[0] as string}`, headers, payload: {} })).statusCode, 400, 'an empty change')
  t.equal((await app.inject({ method: 'POST', url: '/webhooks', headers, payload: { url: 'https://x.example.com/', events: ['user.exploded'] } })).statusCode, 400, 'an unknown event')
  t.equal((await app.inject({ method: 'POST', url: '/webhooks', headers, payload: { url: 'ftp://x.example.com/', events: ['user.created'] } })).statusCode, 400, 'not http(s)')

  t.equal((await app.inject({ method: 'DELETE', url: `/webhooks/${ids[1] as string}`, headers })).statusCode, 204)
  const missing = '00000000-0000-4000-8000-00000000000f'
  for (const [method, url] of [['GET', `/webhooks/${ids[1] as string}`], ['DELETE', `/webhooks/${missing}`], ['POST', `/webhooks/${missing}/test`], ['POST', `/webhooks/${missing}/rotate-secret`], ['GET', `/webhooks/${missing}/deliveries`]] as const) {
    const res = await app.inject({ method, url, headers })
    t.equal(res.statusCode, 404, `${method} ${url}: 404`)
    t.equal(res.json<{ code: string }>().code, 'ROSTER_NOT_FOUND')
  }
  t.equal((await app.inject({ method: 'PATCH', url: `/webhooks/${missing}`, headers, payload: { enabled: true } })).statusCode, 404)

  const audit = (await app.inject({ url: '/audit-events?targetType=webhook&sort=createdAt&limit=200', headers })).json<Array<{ action: string, targetId: string }>>()
  t.same(audit.map((a) => a.action), ['webhook.create', 'webhook.create', 'webhook.create', 'webhook.update', 'webhook.update', 'webhook.delete'])

  // Deliveries, paged; queued while the dispatcher is off (WEBHOOK_DISPATCHER=false): pending with their next try.
  for (let i = 0; i < 3; i++) await app.inject({ method: 'POST', url: `/webhooks/${ids[2] as string}/test`, headers })
  const page = await app.inject({ url: `/webhooks/${ids[2] as string}/deliveries?limit=2`, headers })
  t.equal(page.json<unknown[]>().length, 2)
  t.match(page.json<unknown[]>()[0], { status: 'pending', eventType: 'webhook.test', nextAttemptAt: /Z$/, finishedAt: null, attempts: [] })
  const rest = await app.inject({ url: /<([^>]+)>/.exec(page.headers.link as string)?.[1] as string, headers })
  t.equal(rest.json<unknown[]>().length, 1)
  t.same(await app.webhooks.depth().then((d) => d.pending), 3)
})

t.test('owners only: admins and viewers get 403, API clients too', async (t) => {
  const app = await build(t, { env: { WEBHOOK_DISPATCHER: 'false' } })
  for (const role of ['admin', 'viewer'] as const) {
    const session = await loginAs(app, await createAdmin(app, { role }))
    const res = await app.inject({ method: 'GET', url: '/webhooks', headers: session.headers })
    t.equal(res.statusCode, 403, role)
    t.match(res.json(), { detail: /webhooks:manage/ })
  }
})
