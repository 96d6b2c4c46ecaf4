import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { build, createTestDatabase, waitUntil } from '../helper.ts'
import { outboxRows, smtpPeer } from './peers.ts'
import { transaction } from '../../src/infra/database.ts'

t.test('two instances on one database, 200 emails: each is sent exactly once', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const peer = await smtpPeer(t)
  await peer.start()
  // Long polls: both dispatchers are woken by the same NOTIFY and race for the same rows.
  const env = { MAIL_HOST: '127.0.0.1', MAIL_PORT: String(peer.port), MAIL_POLL_INTERVAL: '60000', MAIL_SEND_TIMEOUT: '5000' }
  const [a, b] = await Promise.all([build(t, { databaseUrl, env }), build(t, { databaseUrl, env })])
  await sleep(100) // both listeners are up

  await transaction(a.db, async (tx) => {
    for (let i = 0; i < 200; i++) await a.mail.enqueue(tx, { template: 'confirm_account', to: `u${i}@example.com`, data: { name: `U${i}`, token: `t${i}` } })
  })
  await waitUntil(() => peer.deliveries.length >= 200, { what: '200 deliveries', timeout: 30_000 })
  await sleep(300) // a duplicate would arrive now
  await waitUntil(() => a.mail.counters.sent + b.mail.counters.sent >= 200, { what: 'the counters' }).catch(() => {}) // asserted below (a counter moves just after its row is committed)

  const counts = peer.counts()
  t.equal(peer.deliveries.length, 200, 'no more deliveries than emails')
  t.equal(counts.size, 200, 'every recipient')
  t.ok([...counts.values()].every((n) => n === 1), 'nobody got an email twice')
  t.equal(a.mail.counters.sent + b.mail.counters.sent, 200)
  t.ok(a.mail.counters.sent > 0 && b.mail.counters.sent > 0, 'both instances took part')
  t.comment(`instance A sent ${a.mail.counters.sent}, instance B ${b.mail.counters.sent}`)
  await waitUntil(async () => (await outboxRows(databaseUrl)).every((r) => r.status === 'sent' && r.attempts === 1), { what: 'every row sent after one attempt' })
})
