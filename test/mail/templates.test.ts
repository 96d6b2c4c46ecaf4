import t from 'tap'
import { renderEmail, TemplateError } from '../../src/mail/templates.ts'
import { escapeHtml } from '../../src/infra/html.ts'
import { retryDelay, MAX_RETRY_DELAY } from '../../src/infra/backoff.ts'
import { smtpFailure, sesFailure } from '../../src/mail/transports.ts'

const BASE = 'https://roster.example.com'

t.test('each template has a subject, a text and an HTML part, and its link', async (t) => {
  const cases = [
    ['confirm_account', 'Confirm your Roster account', `${BASE}/auth/confirm?token=abc`],
    ['confirm_email', 'Confirm your new email address', `${BASE}/auth/confirm?token=abc`],
    ['reset_password', 'Reset your Roster password', `${BASE}/auth/password/reset?token=abc`],
    ['register_existing', 'Someone tried to register with your address', `${BASE}/auth/password/reset?token=abc`]
  ] as const
  for (const [template, subject, link] of cases) {
    const m = renderEmail(template, 'ann@example.com', { name: 'Ann', token: 'abc' }, BASE)
    t.equal(m.to, 'ann@example.com')
    t.equal(m.subject, subject)
    t.equal(m.link, link)
    t.match(m.text, new RegExp(`^Hello Ann,\n[^]*\n${link.replace(/[?.]/g, '\\$&')}\n`))
    t.match(m.html, `<a href="${link}"`)
    t.match(m.html, '<p>Hello Ann,</p>')
  }
})

t.test('user values are escaped in HTML; tokens are URL-encoded', async (t) => {
  const m = renderEmail('confirm_account', 'x@example.com', { name: '<script>alert("x")</script> & \'co\'', token: 'a+b/c=&d' }, BASE)
  t.equal(m.link, `${BASE}/auth/confirm?token=a%2Bb%2Fc%3D%26d`)
  t.notMatch(m.html, '<script>')
  t.match(m.html, '<p>Hello &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;,</p>')
  t.match(m.text, 'Hello <script>alert("x")</script> & \'co\',', 'the text part is plain text')
  t.equal(escapeHtml('a&b<c>d"e\'f'), 'a&amp;b&lt;c&gt;d&quot;e&#39;f')
})

t.test('a missing or blank name greets "there"', async (t) => {
  t.match(renderEmail('confirm_email', 'x@example.com', { token: 't' }, BASE).text, /^Hello there,/)
  t.match(renderEmail('confirm_email', 'x@example.com', { name: '  ', token: 't' }, BASE).text, /^Hello there,/)
})

t.test('rows that cannot become an email are refused', async (t) => {
  t.throws(() => renderEmail('toString', 'x@example.com', { token: 't' }, BASE), TemplateError)
  t.throws(() => renderEmail('confirm_email', 'x@example.com', { token: '' }, BASE), /no token/)
  t.throws(() => renderEmail('confirm_email', 'x@example.com', { token: 42 }, BASE), /no token/)
})

t.test('retry delays double from MAIL_RETRY_BASE, with ±20 % jitter, capped at a day', async (t) => {
  t.equal(retryDelay(1, 600_000, 0.5), 600_000)
  t.equal(retryDelay(2, 600_000, 0.5), 1_200_000)
  t.equal(retryDelay(3, 600_000, 0), 0.8 * 2_400_000)
  t.equal(retryDelay(3, 600_000, 1), 1.2 * 2_400_000)
  t.equal(retryDelay(99, 600_000, 0.5), MAX_RETRY_DELAY)
  const schedule = [1, 2, 3, 4, 5, 6, 7].reduce((sum, n) => sum + retryDelay(n, 600_000, 0.5), 0)
  t.ok(schedule > 20 * 3_600_000 && schedule < 24 * 3_600_000, 'the default 8 attempts span about a day')
  for (let i = 0; i < 100; i++) {
    const d = retryDelay(2, 1000)
    t.ok(d >= 1600 && d <= 2400)
  }
})

t.test('SMTP errors: 5xx to a recipient or the message is permanent, 4xx transient, no answer unavailable', async (t) => {
  const e = (props: object) => Object.assign(new Error('x'), props)
  t.equal(smtpFailure(e({ code: 'EENVELOPE', command: 'RCPT TO', responseCode: 550, permanent: true })), 'permanent')
  t.equal(smtpFailure(e({ code: 'EMESSAGE', command: 'DATA', responseCode: 554, permanent: true })), 'permanent')
  t.equal(smtpFailure(e({ code: 'EENVELOPE', command: 'RCPT TO', responseCode: 451, permanent: false })), 'transient')
  t.equal(smtpFailure(e({ code: 'EENVELOPE', command: 'MAIL FROM', responseCode: 553, permanent: true })), 'transient', 'a refused sender is configuration: retried')
  t.equal(smtpFailure(e({ code: 'EAUTH', command: 'AUTH PLAIN', responseCode: 535, permanent: true })), 'transient', 'bad credentials: retried')
  t.equal(smtpFailure(e({ code: 'EPROTOCOL', command: 'CONN', responseCode: 421 })), 'unavailable')
  t.equal(smtpFailure(e({ code: 'ESOCKET' })), 'unavailable')
  t.equal(smtpFailure(e({ code: 'ETIMEDOUT' })), 'unavailable')
  t.equal(smtpFailure(e({ code: 'EABORT' })), 'unavailable', 'our own send timeout')
  t.equal(smtpFailure(e({ code: 'EENVELOPE', command: 'API' })), 'permanent', 'an address nodemailer refuses to send to')
  t.equal(smtpFailure(e({ code: 'EMESSAGE', command: 'MAIL FROM' })), 'permanent', 'a message too large for the server')
})

t.test('SES errors: MessageRejected and bad requests are permanent, throttling and 5xx unavailable, other 4xx transient', async (t) => {
  const e = (name: string, status?: number) => Object.assign(new Error('x'), { name, $metadata: { httpStatusCode: status } })
  t.equal(sesFailure(e('MessageRejected', 400)), 'permanent')
  t.equal(sesFailure(e('BadRequestException', 400)), 'permanent')
  t.equal(sesFailure(e('TooManyRequestsException', 429)), 'unavailable')
  t.equal(sesFailure(e('LimitExceededException', 400)), 'unavailable', 'daily quota reached')
  t.equal(sesFailure(e('SendingPausedException', 400)), 'unavailable')
  t.equal(sesFailure(e('InternalFailure', 500)), 'unavailable')
  t.equal(sesFailure(e('NotFoundException', 404)), 'transient', 'e.g. a missing configuration set')
  t.equal(sesFailure(e('AccessDeniedException', 403)), 'transient')
  t.equal(sesFailure(e('AbortError')), 'unavailable', 'our own send timeout')
  t.equal(sesFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), 'unavailable')
})
