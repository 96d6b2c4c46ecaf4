/**
 * Webhook delivery against a real receiver on 127.0.0.1, signatures verified
 * with the `standardwebhooks` package: events of users reach the receiver
 * signed, in order per resource, once each by webhook-id, through failures
 * and hangs; a rolled-back change sends nothing.
 */
import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { transaction } from '../../src/infra/database.ts'
import { waitUntil } from '../helper.ts'
import { clientToken, createClient } from '../access/helpers.ts'
import { webhooksFixture, type Received } from './helpers.ts'

interface Payload { type: string, timestamp: string, data: Record<string, unknown> }
const parse = (r: Received): Payload => JSON.parse(r.body) as Payload

t.test('user events are signed (standardwebhooks verifies them), in the documented shape', async (t) => {
  const f = await webhooksFixture(t)
  const { id: endpointId, secret } = await f.createEndpoint({ description: 'HR sync' })
  t.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'a Standard Webhooks secret: whsec_ and 32 bytes in base64')

  const shown = await f.app.inject({ url: `/webhooks/${endpointId}`, headers: f.session.headers })
  t.equal(shown.statusCode, 200)
  t.notOk('secret' in shown.json(), 'the secret is shown once, at creation')
  t.notOk(shown.body.includes(secret.slice(6, 20)), 'no part of it either')
  const { rows: [stored] } = await f.app.pg.pool.query<{ secret: string }>('SELECT secret FROM webhook_endpoints WHERE id = $1', [endpointId])
  t.notOk(stored?.secret.includes(secret.slice(6)), 'stored sealed, not in clear')

  const created = await f.app.inject({ method: 'POST', url: '/users', headers: f.session.headers, payload: { email: 'ann@example.com', name: 'Ann' } })
  const user = created.json<{ id: string }>()
  await f.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: f.session.headers, payload: { name: 'Ann B' } })
  await f.app.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: f.session.headers })
  await waitUntil(() => f.receiver.accepted().length === 3, { what: 'three deliveries' })

  const wh = new Webhook(secret)
  const payloads = f.receiver.accepted().map((r) => wh.verify(r.body, r.headers as Record<string, string>) as Payload)
  t.same(payloads.map((p) => p.type), ['user.created', 'user.updated', 'user.deleted'], 'in order')
  t.match(payloads[0], { type: 'user.created', timestamp: /^\d{4}-\d\d-\d\dT.*Z$/, data: { id: user.id, email: 'ann@example.com', name: 'Ann', active: true, createdBy: f.owner.id } })
  t.match(payloads[1]?.data, { id: user.id, name: 'Ann B' })
  t.notOk('version' in (payloads[0]?.data ?? {}), 'the user as the API shows it')
  const ids = f.receiver.accepted().map((r) => r.headers['webhook-id'])
  t.equal(new Set(ids).size, 3, 'a webhook-id per message')
  t.equal(f.receiver.accepted()[0]?.headers['content-type'], 'application/json')

  const tampered = f.receiver.accepted()[0] as Received
  t.throws(() => wh.verify(tampered.body.replace('Ann', 'Eve'), tampered.headers as Record<string, string>), /No matching signature/, 'a changed body fails verification')
  t.throws(() => new Webhook('whsec_' + Buffer.alloc(32, 1).toString('base64')).verify(tampered.body, tampered.headers as Record<string, string>), /No matching signature/, 'another secret fails verification')

  // The receiver has answered; the dispatcher records the outcome just after.
  await waitUntil(async () => (await f.app.pg.pool.query("SELECT 1 FROM webhook_deliveries WHERE status = 'pending'")).rowCount === 0, { what: 'the outcomes recorded' })
  const deliveries = await f.app.inject({ url: `/webhooks/${endpointId}/deliveries`, headers: f.session.headers })
  t.equal(deliveries.statusCode, 200)
  const list = deliveries.json<Array<{ status: string, eventType: string, messageId: string, attempts: Array<{ statusCode: number }> }>>()
  t.same(list.map((d) => d.eventType), ['user.deleted', 'user.updated', 'user.created'], 'newest first')
  t.ok(list.every((d) => d.status === 'delivered' && d.attempts.length === 1 && d.attempts[0]?.statusCode === 204))
  t.same(list.map((d) => d.messageId).reverse(), ids)
})

t.test('an endpoint gets only the events it subscribed to; admin events too', async (t) => {
  const f = await webhooksFixture(t)
  await f.createEndpoint({ events: ['user.deleted', 'admin.updated'] })
  const user = (await f.app.inject({ method: 'POST', url: '/users', headers: f.session.headers, payload: { email: 'bo@example.com' } })).json<{ id: string }>()
  await f.app.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: f.session.headers })
  const me = await f.app.inject({ method: 'PATCH', url: '/auth/me', headers: f.session.headers, payload: { name: 'renamed-owner' } })
  t.equal(me.statusCode, 200)
  await waitUntil(() => f.receiver.accepted().length === 2, { what: 'two deliveries' })
  const [deleted, admin] = f.receiver.accepted().map(parse)
  t.match(deleted, { type: 'user.deleted', data: { id: user.id, email: 'bo@example.com' } })
  t.match(admin, { type: 'admin.updated', data: { id: f.owner.id, action: 'admin.update', changes: { name: 'renamed-owner' } } })
})

t.test('group and membership events, from REST and from SCIM, in order per group', async (t) => {
  const f = await webhooksFixture(t)
  const { secret } = await f.createEndpoint({ events: ['group.created', 'group.updated', 'group.deleted', 'membership.added', 'membership.removed'] })
  const h = f.session.headers
  const ann = (await f.app.inject({ method: 'POST', url: '/users', headers: h, payload: { email: 'ann@example.com' } })).json<{ id: string }>()
  const bo = (await f.app.inject({ method: 'POST', url: '/users', headers: h, payload: { email: 'bo@example.com' } })).json<{ id: string }>()
  const group = (await f.app.inject({ method: 'POST', url: '/groups', headers: h, payload: { displayName: 'Staff' } })).json<{ id: string }>()
  t.equal((await f.app.inject({ method: 'PUT', url: `/groups/${group.id}/members/${ann.id}`, headers: h })).statusCode, 204)
  t.equal((await f.app.inject({ method: 'PUT', url: `/groups/${group.id}/members/${ann.id}`, headers: h })).statusCode, 204, 'again: no change, no event')
  t.equal((await f.app.inject({ method: 'PATCH', url: `/groups/${group.id}`, headers: h, payload: { description: 'everyone' } })).statusCode, 200)
  // An identity provider replaces the members over SCIM: Ann out, Bo in.
  const client = await createClient(f.app, f.session, ['scim'], 'idp')
  const auth = await clientToken(f.app, client)
  const scim = await f.app.inject({
    method: 'PATCH',
    url: `/scim/v2/Groups/${group.id}`,
    headers: { ...auth, 'content-type': 'application/scim+json' },
    payload: JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', path: 'members', value: [{ value: bo.id }] }] })
  })
  t.equal(scim.statusCode, 204, scim.body)
  t.equal((await f.app.inject({ method: 'DELETE', url: `/groups/${group.id}/members/${bo.id}`, headers: h })).statusCode, 204)
  t.equal((await f.app.inject({ method: 'DELETE', url: `/groups/${group.id}`, headers: h })).statusCode, 204)
  t.equal((await f.app.inject({ method: 'POST', url: '/groups', headers: h, payload: { displayName: 'staff' } })).statusCode, 201)
  t.equal((await f.app.inject({ method: 'POST', url: '/groups', headers: h, payload: { displayName: 'STAFF' } })).statusCode, 409, 'a refused change sends nothing')

  await waitUntil(() => f.receiver.accepted().length === 8, { what: 'eight deliveries' })
  const wh = new Webhook(secret)
  const all = f.receiver.accepted().map((r) => wh.verify(r.body, r.headers as Record<string, string>) as Payload)
  // In order per resource (the group); the second group's event is another resource's, sent alongside.
  const events = all.filter((e) => e.data.id === group.id || e.data.groupId === group.id)
  t.same(events.map((e) => e.type), ['group.created', 'membership.added', 'group.updated', 'membership.removed', 'membership.added', 'membership.removed', 'group.deleted'])
  t.match(all.filter((e) => !events.includes(e)), [{ type: 'group.created', data: { displayName: 'staff' } }])
  t.match(events[0]?.data, { id: group.id, displayName: 'Staff', description: null, createdBy: f.owner.id })
  t.notOk('version' in (events[0]?.data ?? {}) || 'externalId' in (events[0]?.data ?? {}), 'the group as GET /groups/{id} shows it')
  t.same(events[1]?.data, { groupId: group.id, userId: ann.id })
  t.match(events[2]?.data, { id: group.id, description: 'everyone' })
  t.same(events.slice(3, 6).map((e) => e.data), [{ groupId: group.id, userId: ann.id }, { groupId: group.id, userId: bo.id }, { groupId: group.id, userId: bo.id }], 'SCIM\'s replace as the memberships it changed')
  t.match(events[6]?.data, { id: group.id, displayName: 'Staff' })
  await f.app.webhooks.runOnce()
  t.equal(f.receiver.received.length, 8, 'nothing more: the refused change sent nothing')
})

t.test('a rolled-back change sends nothing', async (t) => {
  const f = await webhooksFixture(t)
  await f.createEndpoint()
  await f.app.inject({ method: 'POST', url: '/users', headers: f.session.headers, payload: { email: 'cy@example.com' } })
  const taken = await f.app.inject({ method: 'POST', url: '/users', headers: f.session.headers, payload: { email: 'CY@example.com' } })
  t.equal(taken.statusCode, 409, 'the second create fails in its statement')
  await t.rejects(transaction(f.app.db, async (tx) => {
    await f.app.webhooks.emit(tx, [{ type: 'user.updated', resourceId: '00000000-0000-4000-8000-000000000001', data: { id: 'rolled back' } }])
    throw new Error('the change fails after its event was recorded')
  }), /the change fails/)
  await waitUntil(() => f.receiver.accepted().length === 1, { what: 'the one committed event' })
  await f.app.webhooks.runOnce()
  const { rows } = await f.app.pg.pool.query('SELECT event_type FROM webhook_deliveries')
  t.same(rows, [{ event_type: 'user.created' }], 'only the committed change is in the outbox')
  t.equal(f.receiver.received.length, 1)
  t.equal(parse(f.receiver.received[0] as Received).data.email, 'cy@example.com')
})

t.test('a receiver that fails, hangs and recovers: every message delivered once by id, in order per resource', async (t) => {
  const f = await webhooksFixture(t, { WEBHOOK_TIMEOUT: '1000' })
  const { id: endpointId } = await f.createEndpoint()
  // Five failures, two hangs (cut off after WEBHOOK_TIMEOUT), a body that never ends, then a receiver that works.
  f.receiver.plan = ['fail', 'fail', 'hang', 'fail', 'slow-body', 'fail', 'hang', 'fail']
  const users: string[] = []
  for (let i = 0; i < 4; i++) {
    users.push((await f.app.inject({ method: 'POST', url: '/users', headers: f.session.headers, payload: { email: `u${i}@example.com` } })).json<{ id: string }>().id)
  }
  for (let n = 0; n < 3; n++) {
    for (const id of users.slice(0, 2)) await f.app.inject({ method: 'PATCH', url: `/users/${id}`, headers: f.session.headers, payload: { name: `name ${n}` } })
  }
  await f.app.inject({ method: 'DELETE', url: `/users/${users[3] as string}`, headers: f.session.headers })
  const expected = 4 + 6 + 1
  await waitUntil(() => f.receiver.accepted().length >= expected, { what: `${expected} accepted messages`, timeout: 30_000 })
  await waitUntil(async () => (await f.app.pg.pool.query("SELECT 1 FROM webhook_deliveries WHERE status = 'pending'")).rowCount === 0, { what: 'no pending delivery' })

  const accepted = f.receiver.accepted()
  const byId = new Map<string, number>()
  for (const r of accepted) byId.set(r.headers['webhook-id'] as string, (byId.get(r.headers['webhook-id'] as string) ?? 0) + 1)
  t.equal(byId.size, expected, 'every message accepted')
  t.ok([...byId.values()].every((n) => n === 1), 'each webhook-id accepted exactly once')
  t.ok(f.receiver.received.length > expected, `${f.receiver.received.length} requests for ${expected} messages: retried`)

  for (const id of users) {
    const events = accepted.map(parse).filter((p) => p.data.id === id)
    const names = events.filter((p) => p.type === 'user.updated').map((p) => p.data.name)
    t.equal(events[0]?.type, 'user.created', `user ${id}: created first`)
    if (users.indexOf(id) < 2) t.same(names, ['name 0', 'name 1', 'name 2'], 'its updates in order')
    if (id === users[3]) t.same(events.map((p) => p.type), ['user.created', 'user.deleted'])
  }

  const retried = new Set(f.receiver.received.filter((r) => r.answered !== 204).map((r) => r.headers['webhook-id']))
  t.ok([...retried].every((id) => byId.get(id as string) === 1), 'failed messages came back with the same webhook-id and were accepted once')

  const list = (await f.app.inject({ url: `/webhooks/${endpointId}/deliveries?limit=200`, headers: f.session.headers })).json<Array<{ attempts: Array<{ statusCode: number | null, error: string | null, response: string | null }> }>>()
  const attempts = list.flatMap((d) => d.attempts)
  t.ok(attempts.some((a) => a.statusCode === 500 && a.error === 'HTTP 500' && a.response === 'receiver broken'), 'a 500 is shown with its answer')
  t.ok(attempts.some((a) => a.statusCode === null && a.error === 'timed out after 1000 ms'), 'a hang is cut off and shown as a timeout')
  t.ok(attempts.some((a) => a.statusCode === 200 && a.error === 'timed out after 1000 ms'), 'a body that never ends is cut off too')
  await waitUntil(() => f.app.webhooks.counters.delivered >= expected, { what: 'the counter' }).catch(() => {}) // asserted below (a counter moves just after its row is committed)
  t.equal(f.app.webhooks.counters.delivered, expected)
  t.ok(f.app.webhooks.counters.retried >= 8)
  const metrics = (await f.app.inject({ url: '/metrics' })).body
  t.match(metrics, new RegExp(`^roster_webhook_deliveries_total\\{event="delivered"\\} ${expected}$`, 'm'))
  t.match(metrics, /^roster_webhook_endpoints_disabled_total 0$/m)
})

t.test('test events, replays and secret rotation', async (t) => {
  const f = await webhooksFixture(t)
  const { id, secret } = await f.createEndpoint()
  const test = await f.app.inject({ method: 'POST', url: `/webhooks/${id}/test`, headers: f.session.headers })
  t.equal(test.statusCode, 202)
  await waitUntil(() => f.receiver.accepted().length === 1, { what: 'the test event' })
  const first = f.receiver.accepted()[0] as Received
  t.match(new Webhook(secret).verify(first.body, first.headers as Record<string, string>), { type: 'webhook.test', data: { webhookId: id } })

  const replay = await f.app.inject({ method: 'POST', url: `/webhooks/${id}/deliveries/${test.json<{ deliveryId: string }>().deliveryId}/replay`, headers: f.session.headers })
  t.equal(replay.statusCode, 202)
  t.not(replay.json<{ deliveryId: string }>().deliveryId, test.json<{ deliveryId: string }>().deliveryId, 'a new delivery')
  await waitUntil(() => f.receiver.accepted().length === 2, { what: 'the replay' })
  const again = f.receiver.accepted()[1] as Received
  t.equal(again.headers['webhook-id'], first.headers['webhook-id'], 'the same webhook-id')
  t.equal(again.body, first.body, 'the same body')
  const missing = await f.app.inject({ method: 'POST', url: `/webhooks/${id}/deliveries/00000000-0000-4000-8000-000000000009/replay`, headers: f.session.headers })
  t.equal(missing.statusCode, 404)

  const rotated = await f.app.inject({ method: 'POST', url: `/webhooks/${id}/rotate-secret`, headers: f.session.headers })
  t.equal(rotated.statusCode, 200)
  const newSecret = rotated.json<{ secret: string }>().secret
  t.not(newSecret, secret)
  await f.app.inject({ method: 'POST', url: `/webhooks/${id}/test`, headers: f.session.headers })
  await waitUntil(() => f.receiver.accepted().length === 3, { what: 'an event after the rotation' })
  const third = f.receiver.accepted()[2] as Received
  t.equal((third.headers['webhook-signature'] as string).split(' ').length, 2, 'signed with both secrets during the overlap')
  t.ok(new Webhook(newSecret).verify(third.body, third.headers as Record<string, string>), 'the new secret verifies')
  t.ok(new Webhook(secret).verify(third.body, third.headers as Record<string, string>), 'the old one still does')
  await f.app.pg.pool.query("UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second'")
  await f.app.inject({ method: 'POST', url: `/webhooks/${id}/test`, headers: f.session.headers })
  await waitUntil(() => f.receiver.accepted().length === 4, { what: 'an event after the overlap' })
  const fourth = f.receiver.accepted()[3] as Received
  t.equal((fourth.headers['webhook-signature'] as string).split(' ').length, 1)
  t.throws(() => new Webhook(secret).verify(fourth.body, fourth.headers as Record<string, string>), /No matching signature/, 'the old secret no longer verifies')

  const audit = (await f.app.inject({ url: '/audit-events?targetType=webhook', headers: f.session.headers })).json<Array<{ action: string }>>()
  t.same(audit.map((a) => a.action).sort(), ['webhook.create', 'webhook.secret_rotate'])
})

t.test('an endpoint failing for the retry window is disabled and its owner emailed; a delivery tried that long is failed', async (t) => {
  const f = await webhooksFixture(t)
  f.receiver.otherwise = 'fail'
  const { id } = await f.createEndpoint()
  await f.app.inject({ method: 'POST', url: '/users', headers: f.session.headers, payload: { email: 'dee@example.com' } })
  await waitUntil(() => f.receiver.received.length >= 3, { what: 'three tries' })
  const endpoint = (await f.app.inject({ url: `/webhooks/${id}`, headers: f.session.headers })).json<{ enabled: boolean, failingSince: string | null }>()
  t.equal(endpoint.enabled, true, 'still enabled within the window')
  t.type(endpoint.failingSince, 'string', 'failing since the first failure')

  // A day later (the row says so): the next failure disables the endpoint.
  await f.app.pg.pool.query("UPDATE webhook_endpoints SET failing_since = failing_since - interval '25 hours'")
  const { waitForEmail } = await import('../helper.ts')
  const email = await waitForEmail(f.app, f.owner.email)
  t.match(email, { subject: 'A Roster webhook endpoint was disabled', text: new RegExp(`${f.url}.*${id}`) })
  const disabled = (await f.app.inject({ url: `/webhooks/${id}`, headers: f.session.headers })).json<{ enabled: boolean, disabledReason: string }>()
  t.match(disabled, { enabled: false, disabledReason: 'every delivery failed for 24 h' })
  t.equal(f.app.webhooks.counters.disabled, 1)

  // Disabled: nothing is sent, new events are not recorded for it; its pending delivery waits.
  const tries = f.receiver.received.length
  f.receiver.otherwise = 'ok'
  await f.app.inject({ method: 'POST', url: '/users', headers: f.session.headers, payload: { email: 'eve@example.com' } })
  await f.app.webhooks.runOnce()
  t.equal(f.receiver.received.length, tries, 'nothing sent to a disabled endpoint')
  const { rows } = await f.app.pg.pool.query<{ status: string, n: number }>('SELECT status, count(*)::int AS n FROM webhook_deliveries GROUP BY status')
  t.same(rows, [{ status: 'pending', n: 1 }], 'no delivery recorded while disabled; the pending one kept')
  const enabled = await f.app.inject({ method: 'PATCH', url: `/webhooks/${id}`, headers: f.session.headers, payload: { enabled: true } })
  t.match(enabled.json(), { enabled: true, disabledReason: null, failingSince: null })
  await waitUntil(() => f.receiver.accepted().length === 1, { what: 'the held delivery' })
  t.equal(parse(f.receiver.accepted()[0] as Received).data.email, 'dee@example.com')

  // A delivery retried for the whole window is given up (failed); the endpoint, failing only since then, stays enabled.
  f.receiver.otherwise = 'fail'
  await f.app.inject({ method: 'POST', url: '/users', headers: f.session.headers, payload: { email: 'fay@example.com' } })
  await waitUntil(() => f.receiver.received.length >= tries + 3, { what: 'fay: two tries' })
  await f.app.pg.pool.query("UPDATE webhook_deliveries SET created_at = created_at - interval '25 hours' WHERE status = 'pending'")
  await waitUntil(async () => (await f.app.pg.pool.query("SELECT 1 FROM webhook_deliveries WHERE status = 'failed' AND finished_at IS NOT NULL")).rowCount === 1, { what: 'the delivery marked failed' })
  await waitUntil(() => f.app.webhooks.counters.failed >= 1, { what: 'the counter' }).catch(() => {}) // asserted below (a counter moves just after its row is committed)
  t.equal(f.app.webhooks.counters.failed, 1)
  t.match((await f.app.inject({ url: `/webhooks/${id}`, headers: f.session.headers })).json(), { enabled: true })
})

t.test('two instances on one database: each message delivered once', async (t) => {
  const f = await webhooksFixture(t)
  const { build } = await import('../helper.ts')
  await build(t, { databaseUrl: f.app.databaseUrl, env: { WEBHOOK_DISPATCHER: 'true', WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_POLL_INTERVAL: '10', WEBHOOK_BATCH_SIZE: '2' } })
  await f.createEndpoint()
  for (let i = 0; i < 30; i++) await f.app.inject({ method: 'POST', url: '/users', headers: f.session.headers, payload: { email: `m${i}@example.com` } })
  await waitUntil(() => f.receiver.accepted().length >= 30, { what: '30 messages' })
  await waitUntil(async () => (await f.app.pg.pool.query("SELECT 1 FROM webhook_deliveries WHERE status = 'pending'")).rowCount === 0, { what: 'no pending delivery' })
  t.equal(f.receiver.received.length, 30, 'no message sent twice')
  t.equal(new Set(f.receiver.received.map((r) => r.headers['webhook-id'])).size, 30)
})

t.test('an endpoint deleted while its delivery hangs: nothing recorded, nothing breaks', async (t) => {
  const f = await webhooksFixture(t, { WEBHOOK_TIMEOUT: '1000' })
  f.receiver.plan = ['hang']
  const { id } = await f.createEndpoint()
  await f.app.inject({ method: 'POST', url: '/users', headers: f.session.headers, payload: { email: 'gone@example.com' } })
  await waitUntil(() => f.receiver.received.length === 1, { what: 'the hanging try' })
  f.app.webhooks.wake() // during a pass: the next one follows at once
  t.equal((await f.app.inject({ method: 'DELETE', url: `/webhooks/${id}`, headers: f.session.headers })).statusCode, 204)
  await waitUntil(() => f.app.logs.lines.some((l) => l.msg === 'webhook sent to an endpoint deleted meanwhile: not recorded'), { what: 'the outcome dropped' })
  t.equal((await f.app.pg.pool.query('SELECT 1 FROM webhook_attempts')).rowCount, 0)
  t.notOk(f.app.logs.lines.some((l) => l.msg === 'webhook outbox unreachable: will retry'))
})

t.test('the outbox unreachable: logged once, the dispatcher carries on when it is back', async (t) => {
  const f = await webhooksFixture(t)
  await f.createEndpoint()
  await f.app.pg.pool.query('ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_away')
  await waitUntil(() => f.app.logs.lines.some((l) => l.msg === 'webhook outbox unreachable: will retry'), { what: 'the warning' })
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(f.app.logs.lines.filter((l) => l.msg === 'webhook outbox unreachable: will retry').length, 1, 'once per outage')
  await f.app.pg.pool.query('ALTER TABLE webhook_deliveries_away RENAME TO webhook_deliveries')
  await waitUntil(() => f.app.logs.lines.some((l) => l.msg === 'webhook outbox reachable again'), { what: 'the recovery' })
  await f.app.inject({ method: 'POST', url: '/users', headers: f.session.headers, payload: { email: 'back@example.com' } })
  await waitUntil(() => f.receiver.accepted().length === 1, { what: 'a delivery after the outage' })
  t.pass('delivered after the outage')
})

t.test('in production WEBHOOK_ALLOW_PRIVATE=true is announced with a warning', async (t) => {
  const { build } = await import('../helper.ts')
  const { generateKeyPairSync } = await import('node:crypto')
  const app = await build(t, { env: { NODE_ENV: 'production', WEBHOOK_DISPATCHER: 'true', WEBHOOK_ALLOW_PRIVATE: 'true', JWT_PRIVATE_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string } })
  t.ok(app.logs.lines.some((l) => l.level === 40 && /WEBHOOK_ALLOW_PRIVATE is true/.test(l.msg as string)))
})
