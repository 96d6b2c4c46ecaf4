import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { build, createTestDatabase, waitUntil } from '../helper.ts'
import { BATCH_SIZE } from '../../src/mail/dispatcher.ts'
import { dbProxy, outboxRows, smtpPeer, type SmtpPeer } from './peers.ts'
import { transaction } from '../../src/infra/database.ts'

function smtpEnv (peer: SmtpPeer, extra: Record<string, string> = {}): Record<string, string> {
  return { MAIL_HOST: '127.0.0.1', MAIL_PORT: String(peer.port), MAIL_POLL_INTERVAL: '100', MAIL_RETRY_BASE: '20', MAIL_SEND_TIMEOUT: '2000', ...extra }
}

t.test('acceptance, shortened: 100 emails queued while the SMTP server is down are all delivered exactly once soon after it is up', async (t) => {
  const peer = await smtpPeer(t) // not started: connections are refused
  const app = await build(t, { env: smtpEnv(peer) })

  // Requests keep being answered throughout.
  let answered = 0
  const statuses = new Set<number>()
  const stop = { requests: false }
  const requests = (async () => {
    while (!stop.requests) {
      const res = await app.inject({ url: '/health/ready' })
      statuses.add(res.statusCode)
      answered++
      await sleep(10)
    }
  })()

  for (let i = 0; i < 100; i++) {
    await transaction(app.db, (tx) => app.mail.enqueue(tx, { template: 'confirm_account', to: `user${i}@example.com`, data: { name: `User ${i}`, token: `token-${i}` } }))
  }
  await sleep(1000) // the outage
  t.equal(peer.deliveries.length, 0)
  t.equal(app.mail.providerAvailable, false)
  const waiting = await outboxRows(app.databaseUrl)
  t.equal(waiting.filter((r) => r.status === 'pending').length, 100, 'every email kept')
  t.ok(waiting.filter((r) => r.attempts > 0).length <= BATCH_SIZE, 'only the tries that found the server down count as attempts; probes do not')

  const upAt = Date.now()
  await peer.start()
  await waitUntil(() => peer.deliveries.length >= 100, { what: '100 deliveries', timeout: 30_000 })
  const deliveredIn = Date.now() - upAt
  await sleep(300) // any duplicate would show up now
  stop.requests = true
  await requests

  const counts = peer.counts()
  t.equal(counts.size, 100, 'every recipient got mail')
  t.ok([...counts.values()].every((n) => n === 1), 'each exactly once')
  t.ok(deliveredIn < 30_000, `delivered ${deliveredIn} ms after the server came up`)
  t.comment(`100 emails delivered ${deliveredIn} ms after the SMTP server came up; ${answered} requests answered meanwhile`)
  t.same([...statuses], [200], 'every request answered')
  await waitUntil(async () => (await app.mail.depth()).pending === 0, { what: 'the outbox to be empty' })
  await waitUntil(() => app.mail.counters.sent >= 100, { what: 'the counter' }).catch(() => {}) // asserted below (a counter moves just after its row is committed)
  t.same(app.mail.counters, { queued: 100, sent: 100, retried: app.mail.counters.retried, failed: 0 })
})

t.test('emails due while the service is stopped are sent at the next start', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const peer = await smtpPeer(t)
  const first = await build(t, { databaseUrl, env: smtpEnv(peer) })
  for (let i = 0; i < 5; i++) await first.mail.enqueue(first.db, { template: 'reset_password', to: `r${i}@example.com`, data: { name: 'R', token: `t${i}` } })
  await waitUntil(() => !first.mail.providerAvailable, { what: 'the first instance to find the server down' })
  await first.close()

  // While nothing runs: more rows, one of them a retry that fell due, one still leased by a process that died.
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  await client.query(`INSERT INTO email_outbox (template, recipient, payload, attempts, next_attempt_at) VALUES
    ('confirm_email', 'late@example.com', '{"name": "L", "token": "l"}', 0, now()),
    ('confirm_email', 'retry@example.com', '{"name": "R", "token": "r"}', 2, now() - interval '1 hour'),
    ('confirm_email', 'leased@example.com', '{"name": "D", "token": "d"}', 0, now() + interval '700 milliseconds')`)
  await client.end()

  await peer.start()
  const second = await build(t, { databaseUrl, env: smtpEnv(peer) })
  await waitUntil(() => peer.deliveries.length === 8, { what: 'every email', timeout: 15_000 })
  await sleep(200)
  await waitUntil(() => second.mail.counters.sent >= 8, { what: 'the counter' }).catch(() => {}) // asserted below (a counter moves just after its row is committed)
  t.equal(peer.deliveries.length, 8, 'each once')
  t.same([...peer.counts().keys()].sort(), ['late', 'leased', 'r0', 'r1', 'r2', 'r3', 'r4', 'retry'].map((n) => `${n}@example.com`))
  t.equal(second.mail.counters.sent, 8)
  t.match(await outboxRows(databaseUrl), Array(8).fill({ status: 'sent' }))
})

t.test('the database going away: nothing crashes, the listener reconnects, a send is recorded once it is back', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const proxy = await dbProxy(t, databaseUrl)
  let cut = true
  const peer = await smtpPeer(t, {
    // The first message is accepted only after the database is gone: its outcome cannot be recorded at once.
    beforeAccept: async () => { if (cut) { cut = false; await proxy.down() } }
  })
  await peer.start()
  // A poll interval of a minute: anything quicker than that comes through LISTEN/NOTIFY.
  const app = await build(t, { databaseUrl: proxy.url, env: smtpEnv(peer, { MAIL_POLL_INTERVAL: '60000', DB_CONNECTION_TIMEOUT: '500' }) })
  await sleep(100) // the listener is up
  await app.mail.enqueue(app.db, { template: 'confirm_account', to: 'one@example.com', data: { name: 'O', token: 'o' } })

  await waitUntil(() => app.logs.lines.some((l) => l.msg === 'email outbox unreachable: will retry'), { what: 'the failed recording' })
  await waitUntil(() => app.logs.lines.some((l) => l.msg === 'database listener lost: reconnecting'), { what: 'the listener to notice' })
  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200, 'the service still answers')
  t.equal(peer.deliveries.length, 1)
  t.equal((await outboxRows(databaseUrl))[0]?.status, 'pending', 'not recorded yet')
  await sleep(1500) // reconnect attempts fail meanwhile

  await proxy.up()
  await waitUntil(() => app.logs.lines.some((l) => l.msg === 'database listener reconnected'), { what: 'the listener to reconnect', timeout: 15_000 })
  await waitUntil(async () => (await outboxRows(databaseUrl))[0]?.status === 'sent', { what: 'the outcome recorded', timeout: 15_000 })
  // The dispatcher logs the recovery once its pass is over, a moment after the outcome is committed.
  const recovered = (): boolean => app.logs.lines.some((l) => l.msg === 'email outbox reachable again')
  await waitUntil(recovered, { what: 'the recovery logged', timeout: 15_000 }).catch(() => {}) // asserted below
  t.ok(recovered(), 'the recovery logged')
  t.equal(app.logs.lines.filter((l) => l.msg === 'email outbox unreachable: will retry').length, 1, 'logged once per outage')

  const before = Date.now()
  await app.mail.enqueue(app.db, { template: 'confirm_account', to: 'two@example.com', data: { name: 'T', token: 't' } })
  await waitUntil(() => peer.deliveries.length === 2, { what: 'the next email', timeout: 30_000 })
  t.ok(Date.now() - before < 30_000, 'woken by NOTIFY on the new connection, not by the one-minute poll')
  t.same(peer.counts(), new Map([['one@example.com', 1], ['two@example.com', 1]]), 'nothing sent twice')
})

t.test('closing while the database is away still ends cleanly', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const proxy = await dbProxy(t, databaseUrl)
  let cut = true
  const peer = await smtpPeer(t, { beforeAccept: async () => { if (cut) { cut = false; await proxy.down() } } })
  await peer.start()
  const app = await build(t, { databaseUrl: proxy.url, env: smtpEnv(peer, { DB_CONNECTION_TIMEOUT: '500' }) })
  await app.mail.enqueue(app.db, { template: 'confirm_account', to: 'one@example.com', data: { name: 'O', token: 'o' } })
  await waitUntil(() => app.logs.lines.some((l) => l.msg === 'email outbox unreachable: will retry'), { what: 'the failed recording' })
  await app.close()
  t.match(app.logs.lines.find((l) => l.level === 50), { msg: 'could not record the outcome of sent emails: they will be sent again' })
})
