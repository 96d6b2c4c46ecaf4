import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { build, waitUntil } from '../helper.ts'
import { outboxRows, rejection, smtpPeer, type SmtpPeer } from './peers.ts'
import { transaction } from '../../src/infra/database.ts'

function smtpEnv (peer: SmtpPeer, extra: Record<string, string> = {}): Record<string, string> {
  return {
    MAIL_HOST: '127.0.0.1',
    MAIL_PORT: String(peer.port),
    MAIL_FROM: 'Roster <no-reply@roster.test>',
    MAIL_POLL_INTERVAL: '50',
    MAIL_RETRY_BASE: '20',
    MAIL_SEND_TIMEOUT: '2000',
    PUBLIC_URL: 'https://roster.example.com',
    ...extra
  }
}

t.test('an email reaches a real SMTP server: recipient, subject, text and HTML parts, link', async (t) => {
  const peer = await smtpPeer(t, { auth: { user: 'roster', pass: 'smtp-s3cret-password' } })
  await peer.start()
  const app = await build(t, { env: smtpEnv(peer, { MAIL_USERNAME: 'roster', MAIL_PASSWORD: 'smtp-s3cret-password' }) })
  t.equal(app.mail.transport, 'smtp', 'chosen because MAIL_HOST is set')
  await transaction(app.db, (tx) => app.mail.enqueue(tx, { template: 'confirm_account', to: 'ann@example.com', data: { name: '<Ann & Co>', token: 'tok/1+2' } }))
  await waitUntil(() => peer.deliveries.length === 1, { what: 'the delivery' })

  const [{ to, mail }] = peer.deliveries as [typeof peer.deliveries[0]]
  const link = 'https://roster.example.com/auth/confirm?token=tok%2F1%2B2'
  t.same(to, ['ann@example.com'], 'envelope recipient')
  t.equal(mail.subject, 'Confirm your Roster account')
  t.equal(mail.from?.text, '"Roster" <no-reply@roster.test>')
  t.match(mail.to, { text: 'ann@example.com' })
  t.match(mail.text, `Hello <Ann & Co>,\n\nPlease confirm your Roster account by opening the link below.\n\n${link}\n`)
  t.match(mail.html, '<p>Hello &lt;Ann &amp; Co&gt;,</p>')
  t.match(mail.html, `<a href="${link}"`)

  await waitUntil(async () => (await outboxRows(app.databaseUrl))[0]?.status === 'sent', { what: 'the row marked sent' })
  const [row] = await outboxRows(app.databaseUrl)
  t.match(row, { status: 'sent', attempts: 1, payload: { name: '<Ann & Co>' }, providerMessageId: mail.messageId })
  t.notOk('token' in (row?.payload ?? {}), 'token erased')
  t.notMatch(app.logs.text(), 'smtp-s3cret-password', 'the SMTP password is never logged')
})

t.test('a 550 fails the email at once, without retries; other emails go on', async (t) => {
  const peer = await smtpPeer(t, { rcpt: (address) => address.startsWith('nobody@') ? rejection(550, '5.1.1 No such user') : undefined })
  await peer.start()
  const app = await build(t, { env: smtpEnv(peer) })
  await transaction(app.db, async (tx) => {
    await app.mail.enqueue(tx, { template: 'reset_password', to: 'nobody@example.com', data: { name: 'N', token: 'secret-n' } })
    await app.mail.enqueue(tx, { template: 'reset_password', to: 'ok@example.com', data: { name: 'O', token: 'secret-o' } })
  })
  await waitUntil(() => app.mail.counters.failed === 1 && app.mail.counters.sent === 1, { what: 'both outcomes' })
  await sleep(300)
  t.equal(peer.rcpts.filter((r) => r === 'nobody@example.com').length, 1, 'tried once only')
  const rows = await outboxRows(app.databaseUrl)
  const failed = rows.find((r) => r.recipient === 'nobody@example.com')
  t.match(failed, { status: 'failed', attempts: 1, lastError: /^550 5\.1\.1 No such user/, payload: { name: 'N' } })
  t.notOk('token' in (failed?.payload ?? {}), 'token erased from a failed row too')
  t.same(peer.counts(), new Map([['ok@example.com', 1]]))
  t.match(app.logs.lines.find((l) => l.level === 50), { msg: 'email not delivered: given up', to: 'nobody@example.com', attempts: 1, kind: 'permanent' })
  t.equal(app.mail.counters.retried, 0)
})

t.test('a 451 is retried with backoff until MAIL_MAX_ATTEMPTS, then the email fails', async (t) => {
  const peer = await smtpPeer(t, { rcpt: () => rejection(451, '4.7.1 Greylisted, try again later') })
  await peer.start()
  const app = await build(t, { env: smtpEnv(peer, { MAIL_MAX_ATTEMPTS: '3' }) })
  await app.mail.enqueue(app.db, { template: 'confirm_email', to: 'grey@example.com', data: { name: 'G', token: 'secret-g' } })
  await waitUntil(() => app.mail.counters.failed === 1, { what: 'the email to be given up' })
  t.equal(peer.rcpts.length, 3, 'three tries')
  t.equal(app.mail.counters.retried, 2)
  const retries = app.logs.lines.filter((l) => l.msg === 'email not delivered yet: will retry')
  t.match(retries, [{ attempts: 1, kind: 'transient', level: 40 }, { attempts: 2, kind: 'transient' }])
  t.ok((retries[1]?.retryInMs as number) >= 32 && (retries[1]?.retryInMs as number) <= 48, 'the second wait is twice the first (±20 %)')
  const [row] = await outboxRows(app.databaseUrl)
  t.match(row, { status: 'failed', attempts: 3, lastError: /^451 4\.7\.1 Greylisted/ })
  t.notOk('token' in (row?.payload ?? {}))
  t.match(app.logs.lines.find((l) => l.level === 50), { msg: 'email not delivered: given up', attempts: 3, kind: 'transient' })
})

t.test('the SMTP server stopping mid-run: the email waits and is delivered once it is back', async (t) => {
  const peer = await smtpPeer(t)
  await peer.start()
  const app = await build(t, { env: smtpEnv(peer) })
  await app.mail.enqueue(app.db, { template: 'confirm_account', to: 'first@example.com', data: { name: 'F', token: 'a' } })
  await waitUntil(() => peer.deliveries.length === 1, { what: 'the first delivery' })

  await peer.stop()
  await app.mail.enqueue(app.db, { template: 'confirm_account', to: 'second@example.com', data: { name: 'S', token: 'b' } })
  await waitUntil(() => !app.mail.providerAvailable, { what: 'the outage to be noticed' })
  t.ok(app.logs.lines.some((l) => l.msg === 'email provider unreachable: holding emails back, one probe per poll'))
  await sleep(400) // several probes
  const [, waiting] = await outboxRows(app.databaseUrl)
  t.match(waiting, { recipient: 'second@example.com', status: 'pending', attempts: 1, lastError: /ECONNREFUSED/ }, 'probes do not use up attempts')

  await peer.start()
  await waitUntil(() => peer.deliveries.length === 2, { what: 'the second delivery' })
  await waitUntil(() => app.mail.providerAvailable, { what: 'the provider to be reachable again' })
  t.same(peer.counts(), new Map([['first@example.com', 1], ['second@example.com', 1]]))
  await waitUntil(async () => (await outboxRows(app.databaseUrl)).every((r) => r.status === 'sent'), { what: 'both rows sent' })
  t.ok(app.logs.lines.some((l) => l.msg === 'email provider reachable again'))
})

t.test('closing the app finishes the send in flight', async (t) => {
  let started: () => void = () => {}
  const inFlight = new Promise<void>((resolve) => { started = resolve })
  const peer = await smtpPeer(t, { beforeAccept: async () => { started(); await sleep(300) } })
  await peer.start()
  const app = await build(t, { env: smtpEnv(peer) })
  await app.mail.enqueue(app.db, { template: 'confirm_account', to: 'slow@example.com', data: { name: 'S', token: 's' } })
  await inFlight
  await app.close()
  t.equal(peer.deliveries.length, 1, 'delivered')
  const [row] = await outboxRows(app.databaseUrl)
  t.equal(row?.status, 'sent', 'and recorded before the app closed')
})
