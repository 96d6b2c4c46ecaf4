import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { build, waitForEmail, waitUntil } from '../helper.ts'
import { outboxRows } from './peers.ts'
import { transaction } from '../../src/infra/database.ts'

const FAST = { MAIL_POLL_INTERVAL: '50', MAIL_RETRY_BASE: '20' }

t.test('the log transport (the default) prints the whole email with its link, for its address', async (t) => {
  const app = await build(t, { env: { ...FAST, PUBLIC_URL: 'https://roster.example.com/', MAIL_PASSWORD: 'smtp-password-never-logged' } })
  t.equal(app.mail.transport, 'log')
  await transaction(app.db, async (tx) => {
    await app.mail.enqueue(tx, { template: 'confirm_account', to: 'ann@example.com', data: { name: 'Ann', token: 'tok-123' } })
  })
  t.equal(app.mail.counters.queued, 1)
  await waitUntil(() => app.mail.counters.sent === 1, { what: 'the email to be sent' })

  const line = app.logs.lines.find((l) => l.email !== undefined)
  t.equal(line?.level, 30, 'info level')
  t.equal(line?.msg, 'email for ann@example.com: "Confirm your Roster account" https://roster.example.com/auth/confirm?token=tok-123')
  t.match(line?.email, { to: 'ann@example.com', subject: 'Confirm your Roster account', link: 'https://roster.example.com/auth/confirm?token=tok-123' })
  t.match((line?.email as { text: string }).text, /Hello Ann,\n\n.*\n\nhttps:\/\/roster\.example\.com\/auth\/confirm\?token=tok-123\n/)
  t.ok(app.logs.lines.some((l) => l.msg === 'email sent' && l.component === 'mail'), 'the dispatcher logs the delivery')
  t.notMatch(app.logs.text(), 'smtp-password-never-logged', 'no secret in the log')

  const [row] = await outboxRows(app.databaseUrl)
  t.match(row, { recipient: 'ann@example.com', status: 'sent', attempts: 1, payload: { name: 'Ann' }, lastError: null, providerMessageId: null })
  t.notOk('token' in (row?.payload ?? {}), 'the token is erased once sent')
  t.same(await app.mail.depth(), { pending: 0, failed: 0 })
  t.same(app.mail.counters, { queued: 1, sent: 1, retried: 0, failed: 0 })
  t.equal(app.mail.providerAvailable, true)
})

t.test('an email queued in a transaction that rolls back is never sent', async (t) => {
  const app = await build(t, { env: FAST })
  await t.rejects(transaction(app.db, async (tx) => {
    await app.mail.enqueue(tx, { template: 'reset_password', to: 'bob@example.com', data: { name: 'Bob', token: 'x' } })
    throw new Error('the change failed')
  }), /the change failed/)
  await sleep(200)
  t.same(await outboxRows(app.databaseUrl), [])
  t.equal(app.mail.counters.sent, 0)
})

t.test('with MAIL_DISPATCHER=false the instance only queues; runOnce() sends', async (t) => {
  const app = await build(t, { env: { ...FAST, MAIL_DISPATCHER: 'false' } })
  await app.mail.enqueue(app.db, { template: 'reset_password', to: 'bob@example.com', data: { name: 'Bob', token: 'r-1' } })
  await sleep(200)
  t.same(await app.mail.depth(), { pending: 1, failed: 0 }, 'nothing sent by itself')
  t.equal(await app.mail.runOnce(), 1)
  t.equal(await app.mail.runOnce(), 0, 'nothing left')
  t.ok(app.logs.lines.some((l) => l.msg === 'email for bob@example.com: "Reset your Roster password" http://localhost:3000/auth/password/reset?token=r-1'))
  const email = await waitForEmail(app, 'bob@example.com')
  t.match(email, { subject: 'Reset your Roster password', link: 'http://localhost:3000/auth/password/reset?token=r-1', token: 'r-1', text: /Hello Bob/ })
  await app.mail.enqueue(app.db, { template: 'reset_password', to: 'bob@example.com', data: { name: 'Bob', token: 'r-2' } })
  await t.rejects(waitForEmail(app, 'bob@example.com', 2, 100), /no email #2 to bob@example.com/)
  await app.mail.runOnce()
  t.equal((await waitForEmail(app, 'bob@example.com', 2)).token, 'r-2')
})

t.test('a row that cannot be rendered fails at once, token erased, logged at error', async (t) => {
  const app = await build(t, { env: { ...FAST, MAIL_DISPATCHER: 'false' } })
  await app.pg.pool.query(`INSERT INTO email_outbox (template, recipient, payload) VALUES
    ('no_such_template', 'a@example.com', '{"name": "A", "token": "secret-a"}'),
    ('confirm_email', 'b@example.com', '{"name": "B"}')`)
  t.equal(await app.mail.runOnce(), 2)
  const rows = await outboxRows(app.databaseUrl)
  t.match(rows, [
    { recipient: 'a@example.com', status: 'failed', attempts: 1, payload: { name: 'A' }, lastError: 'unknown email template "no_such_template"' },
    { recipient: 'b@example.com', status: 'failed', attempts: 1, lastError: /no token/ }
  ])
  t.notOk('token' in (rows[0]?.payload ?? {}))
  const errors = app.logs.lines.filter((l) => l.level === 50)
  t.equal(errors.length, 2)
  t.match(errors[0], { msg: 'email not delivered: given up', to: 'a@example.com', kind: 'permanent' })
  t.same(await app.mail.depth(), { pending: 0, failed: 2 })
  t.equal(app.mail.counters.failed, 2)
})

t.test('in production the log transport is announced with a warning', async (t) => {
  const app = await build(t, { env: { NODE_ENV: 'production', PUBLIC_URL: 'https://roster.example.com', JWT_PRIVATE_KEY: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string } })
  t.ok(app.logs.lines.some((l) => l.level === 40 && l.msg === 'MAIL_TRANSPORT is log: emails are written to the log, not sent'))
})
