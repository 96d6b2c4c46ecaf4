/**
 * The mail provider's outage end to end: admins register while the SMTP
 * server is down; once it is back every confirmation email arrives, exactly
 * once, and every link in them confirms its account.
 */
import t from 'tap'
import { build, waitUntil } from '../helper.ts'
import { smtpPeer } from '../mail/peers.ts'

const COUNT = 50
const PASSWORD = 'correct horse battery staple, longer'

t.test(`${COUNT} registrations while the SMTP server is down: every confirmation link arrives once it is back, and works`, async (t) => {
  const peer = await smtpPeer(t) // not started: connections are refused
  const app = await build(t, {
    env: { MAIL_HOST: '127.0.0.1', MAIL_PORT: String(peer.port), MAIL_POLL_INTERVAL: '100', MAIL_RETRY_BASE: '20', MAIL_SEND_TIMEOUT: '2000', AUTH_RATE_LIMIT: '1000' }
  })
  const emails = Array.from({ length: COUNT }, (_, i) => `outage-${i}@example.com`)
  for (const [i, email] of emails.entries()) {
    const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, name: `outage-${i}`, password: PASSWORD } })
    t.equal(res.statusCode, 201, `registered ${email} while the provider is down`)
  }
  await waitUntil(() => !app.mail.providerAvailable, { what: 'the dispatcher to find the provider down' })
  t.equal(peer.deliveries.length, 0, 'nothing delivered yet')
  t.equal((await app.mail.depth()).pending, COUNT, 'every email kept in the outbox')

  await peer.start()
  await waitUntil(() => peer.deliveries.length >= COUNT, { what: `${COUNT} deliveries`, timeout: 30_000 })
  const counts = peer.counts()
  t.same([...counts.keys()].sort(), [...emails].sort(), 'every admin got its email')
  t.ok([...counts.values()].every((n) => n === 1), 'each exactly once')

  let confirmed = 0
  for (const delivery of peer.deliveries) {
    const link = /https?:\/\/\S+\/auth\/confirm\?token=[\w-]+/.exec(delivery.mail.text ?? '')?.[0] as string
    const res = await app.inject({ url: new URL(link).pathname + new URL(link).search })
    if (res.statusCode === 200) confirmed++
  }
  t.equal(confirmed, COUNT, 'every link confirms its account')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: emails[0], password: PASSWORD } })
  t.equal(login.statusCode, 200, 'a confirmed admin logs in')
  t.comment(`${COUNT} registrations during the outage; ${peer.deliveries.length} emails delivered after it, ${confirmed} links confirmed`)
})
