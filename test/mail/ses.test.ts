import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import sesLocal from 'aws-ses-v2-local'
import { build, waitUntil } from '../helper.ts'
import { outboxRows } from './peers.ts'
import type { TestContext } from '../helper.ts'
import { transaction } from '../../src/infra/database.ts'

interface StoredEmail {
  messageId: string
  from: string
  destination: { to: string[] }
  subject: string
  body: { text?: string, html?: string }
}

/** aws-ses-v2-local on a free loopback port; its GET /store lists what it received. */
async function localSes (t: TestContext): Promise<{ endpoint: string, emails: () => Promise<StoredEmail[]> }> {
  const server = await sesLocal.default({ host: '127.0.0.1', port: 0 })
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  await fetch(`${endpoint}/clear-store`, { method: 'POST' })
  return {
    endpoint,
    emails: async () => ((await (await fetch(`${endpoint}/store`)).json()) as { emails: StoredEmail[] }).emails
  }
}

interface SesRequest { path: string, authorization: string, body: { Destination: { ToAddresses: string[] }, ConfigurationSetName?: string } }

/**
 * A scripted SES v2 endpoint: answers SendEmail by recipient (rejected@ -> MessageRejected,
 * missing@ -> 404, down@ -> 500 while `down`, noid@ -> 200 without MessageId, else 200).
 */
async function scriptedSes (t: TestContext): Promise<{ endpoint: string, requests: SesRequest[], setDown: (down: boolean) => void }> {
  const requests: SesRequest[] = []
  let down = false
  const server = http.createServer((req, res) => {
    let raw = ''
    req.on('data', (c: Buffer) => { raw += c.toString() })
    req.on('end', () => {
      const body = JSON.parse(raw) as SesRequest['body']
      requests.push({ path: req.url as string, authorization: req.headers.authorization as string, body })
      const to = body.Destination.ToAddresses[0] as string
      const reply = (status: number, json: object, type?: string): void => {
        res.writeHead(status, { 'content-type': 'application/json', ...(type === undefined ? {} : { 'x-amzn-errortype': type }) })
        res.end(JSON.stringify(json))
      }
      if (to.startsWith('rejected@')) reply(400, { message: 'Email address is not verified.' }, 'MessageRejected')
      else if (to.startsWith('missing@')) reply(404, { message: 'Configuration set does not exist.' }, 'NotFoundException')
      else if (to.startsWith('down@') && down) reply(500, { message: 'internal' }, 'InternalFailure')
      else if (to.startsWith('noid@')) reply(200, {})
      else reply(200, { MessageId: `scripted-${requests.length}` })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, setDown: (d) => { down = d } }
}

const FAST = { MAIL_TRANSPORT: 'ses', MAIL_POLL_INTERVAL: '50', MAIL_RETRY_BASE: '20', MAIL_SEND_TIMEOUT: '5000', AWS_REGION: 'eu-west-1', MAIL_FROM: 'Roster <no-reply@roster.test>', PUBLIC_URL: 'https://roster.example.com' }
const KEYS = { AWS_KEY: 'AKIAROSTERTEST', AWS_SECRET: 'aws-secret-never-logged' }

t.test('SES v2: the real SDK client sends to a local SES endpoint', async (t) => {
  const ses = await localSes(t)
  const app = await build(t, { env: { ...FAST, ...KEYS, SES_ENDPOINT: ses.endpoint } })
  t.equal(app.mail.transport, 'ses')
  await transaction(app.db, (tx) => app.mail.enqueue(tx, { template: 'reset_password', to: 'ann@example.com', data: { name: 'Ann <A>', token: 'r-7' } }))
  await waitUntil(async () => (await ses.emails()).length === 1, { what: 'the email at the SES endpoint' })

  const [email] = await ses.emails()
  const link = 'https://roster.example.com/auth/password/reset?token=r-7'
  t.match(email, { from: 'Roster <no-reply@roster.test>', destination: { to: ['ann@example.com'] }, subject: 'Reset your Roster password' })
  t.match(email?.body.text, 'Hello Ann <A>,')
  t.match(email?.body.text, link)
  t.match(email?.body.html, `<a href="${link}"`)
  t.match(email?.body.html, 'Hello Ann &lt;A&gt;,')
  await waitUntil(async () => (await outboxRows(app.databaseUrl))[0]?.status === 'sent', { what: 'the row marked sent' })
  const [row] = await outboxRows(app.databaseUrl)
  t.equal(row?.providerMessageId, email?.messageId, 'the SES message id is kept')
  t.notMatch(app.logs.text(), KEYS.AWS_SECRET)
})

t.test('SES answers: MessageRejected fails at once, other 4xx retry, 5xx holds back until SES is back', async (t) => {
  const ses = await scriptedSes(t)
  ses.setDown(true)
  const app = await build(t, { env: { ...FAST, ...KEYS, SES_ENDPOINT: ses.endpoint, SES_CONFIGURATION_SET: 'roster-events', MAIL_MAX_ATTEMPTS: '2' } })
  const send = (to: string) => app.mail.enqueue(app.db, { template: 'confirm_account', to, data: { name: 'X', token: `t-${to}` } })
  await send('rejected@example.com')
  await send('missing@example.com')
  await send('noid@example.com')
  await waitUntil(() => app.mail.counters.failed === 2 && app.mail.counters.sent === 1, { what: 'the first three outcomes' })
  const rows = await outboxRows(app.databaseUrl)
  t.match(rows.find((r) => r.recipient === 'rejected@example.com'), { status: 'failed', attempts: 1, lastError: 'MessageRejected: Email address is not verified.' })
  t.match(rows.find((r) => r.recipient === 'missing@example.com'), { status: 'failed', attempts: 2, lastError: /^NotFoundException/ })
  t.match(rows.find((r) => r.recipient === 'noid@example.com'), { status: 'sent', providerMessageId: null })
  t.equal(ses.requests.filter((r) => r.body.Destination.ToAddresses[0] === 'rejected@example.com').length, 1, 'no retry after MessageRejected')
  t.match(ses.requests[0], { path: '/v2/email/outbound-emails', body: { ConfigurationSetName: 'roster-events' }, authorization: /Credential=AKIAROSTERTEST\// })

  await send('down@example.com')
  await waitUntil(() => !app.mail.providerAvailable, { what: 'SES to be seen as unavailable' })
  ses.setDown(false)
  await waitUntil(() => app.mail.counters.sent === 2, { what: 'the held-back email once SES answers' })
  t.match((await outboxRows(app.databaseUrl)).find((r) => r.recipient === 'down@example.com'), { status: 'sent', providerMessageId: /^scripted-/ })
})

t.test('without AWS_KEY/AWS_SECRET the SDK default credential chain is used', async (t) => {
  const ses = await scriptedSes(t)
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY }
  process.env.AWS_ACCESS_KEY_ID = 'AKIAFROMENVIRONMENT'
  process.env.AWS_SECRET_ACCESS_KEY = 'from-the-environment'
  t.teardown(() => {
    process.env.AWS_ACCESS_KEY_ID = saved.id ?? ''
    process.env.AWS_SECRET_ACCESS_KEY = saved.secret ?? ''
  })
  const app = await build(t, { env: { ...FAST, SES_ENDPOINT: ses.endpoint } })
  await app.mail.enqueue(app.db, { template: 'confirm_email', to: 'env@example.com', data: { name: 'E', token: 'e' } })
  await waitUntil(() => app.mail.counters.sent === 1, { what: 'the email' })
  t.match(ses.requests[0]?.authorization, /Credential=AKIAFROMENVIRONMENT\//)
})
