import type { FastifyBaseLogger } from 'fastify'
import type { SESv2Client } from '@aws-sdk/client-sesv2'
import { mailTransport, type Config } from '../config.ts'
import type { Message } from './templates.ts'

/**
 * How a failed send is treated:
 * - `permanent`: the provider refused this message for good (SMTP 5xx to RCPT/DATA, SES MessageRejected):
 *   the email is marked failed at once.
 * - `transient`: the provider answered but may take the message later (SMTP 4xx, other SES 4xx):
 *   retried with exponential backoff, each try counting against MAIL_MAX_ATTEMPTS.
 * - `unavailable`: the provider could not be reached or is refusing all traffic (connection refused,
 *   timeout, SMTP 421, SES throttling or 5xx): the dispatcher pauses and probes until it answers again.
 */
export type FailureKind = 'permanent' | 'transient' | 'unavailable'

export class DeliveryError extends Error {
  override name = 'DeliveryError'
  constructor (readonly kind: FailureKind, message: string, options?: ErrorOptions) {
    super(message, options)
  }
}

export interface Transport {
  readonly name: 'log' | 'smtp' | 'ses'
  /** Sends one email; resolves with the provider's message id; rejects with a DeliveryError. */
  send: (message: Message, signal: AbortSignal) => Promise<string | null>
  close: () => void
}

interface SmtpError extends Error {
  code?: string
  command?: string
  response?: string
  responseCode?: number
  permanent?: boolean
}

/** Classifies a nodemailer error. */
export function smtpFailure (err: SmtpError): FailureKind {
  if (err.responseCode === undefined) {
    // Refused locally before any server reply: a malformed message or address will never pass.
    return err.code === 'EENVELOPE' || err.code === 'EMESSAGE' ? 'permanent' : 'unavailable'
  }
  if (err.responseCode === 421) return 'unavailable'
  // A 5xx to MAIL FROM or AUTH is about Roster's own configuration, not this message: keep trying.
  if (err.permanent === true && (err.command === 'RCPT TO' || err.command === 'DATA')) return 'permanent'
  return 'transient'
}

interface SesError extends Error {
  $metadata?: { httpStatusCode?: number }
}

const SES_PERMANENT = new Set(['MessageRejected', 'BadRequestException'])
/** Account-wide refusals: every email would get the same answer, so the dispatcher pauses instead of spending attempts. */
const SES_UNAVAILABLE = new Set(['TooManyRequestsException', 'LimitExceededException', 'SendingPausedException', 'AccountSuspendedException'])

/** Classifies an AWS SDK (SES v2) error. */
export function sesFailure (err: SesError): FailureKind {
  if (SES_PERMANENT.has(err.name)) return 'permanent'
  if (SES_UNAVAILABLE.has(err.name)) return 'unavailable'
  const status = err.$metadata?.httpStatusCode ?? 0
  return status >= 400 && status < 500 ? 'transient' : 'unavailable'
}

/** Development transport: the whole email, link included, goes to the log at info level. */
function logTransport (log: FastifyBaseLogger): Transport {
  return {
    name: 'log',
    async send (message) {
      log.info({ email: { to: message.to, subject: message.subject, link: message.link, text: message.text } },
        `email for ${message.to}: "${message.subject}" ${message.link}`)
      return null
    },
    close () {}
  }
}

/**
 * A library a transport needs, loaded only when that transport is configured (nodemailer and the
 * AWS SDK take several MB of memory each: an instance that writes emails to the log loads
 * neither). The import starts at once, when the app starts; the first send waits for it. A
 * package missing from the install fails the process as loudly as a static import would.
 */
function loading<T> (load: () => Promise<T>): () => Promise<T> {
  const loaded = load()
  return async () => await loaded
}

function smtpTransport (config: Config): Transport {
  const transporter = loading(async () => (await import('nodemailer')).default.createTransport({
    host: config.MAIL_HOST,
    port: config.MAIL_PORT,
    secure: config.MAIL_SECURE,
    auth: config.MAIL_USERNAME === undefined ? undefined : { user: config.MAIL_USERNAME, pass: config.MAIL_PASSWORD },
    connectionTimeout: config.MAIL_SEND_TIMEOUT,
    greetingTimeout: config.MAIL_SEND_TIMEOUT,
    socketTimeout: config.MAIL_SEND_TIMEOUT,
    logger: false
  }))
  return {
    name: 'smtp',
    async send (message, signal) {
      try {
        const info = await (await transporter()).sendMail({ from: config.MAIL_FROM, to: message.to, subject: message.subject, text: message.text, html: message.html, signal })
        return info.messageId
      } catch (err) {
        const e = err as SmtpError
        throw new DeliveryError(smtpFailure(e), e.response ?? e.message, { cause: err })
      }
    },
    close () { transporter().then((t) => { t.close() }) }
  }
}

function sesTransport (config: Config): Transport {
  const ses = loading(async () => {
    const { SESv2Client, SendEmailCommand } = await import('@aws-sdk/client-sesv2')
    const client: SESv2Client = new SESv2Client({
      region: config.AWS_REGION,
      endpoint: config.SES_ENDPOINT,
      // The legacy pair when both are given; otherwise the SDK's default chain (env, profile, container or instance role).
      credentials: config.AWS_KEY !== undefined && config.AWS_SECRET !== undefined
        ? { accessKeyId: config.AWS_KEY, secretAccessKey: config.AWS_SECRET }
        : undefined
    })
    return { client, SendEmailCommand }
  })
  return {
    name: 'ses',
    async send (message, signal) {
      try {
        const { client, SendEmailCommand } = await ses()
        const command = new SendEmailCommand({
          FromEmailAddress: config.MAIL_FROM,
          Destination: { ToAddresses: [message.to] },
          ConfigurationSetName: config.SES_CONFIGURATION_SET,
          Content: {
            Simple: {
              Subject: { Data: message.subject, Charset: 'UTF-8' },
              Body: { Text: { Data: message.text, Charset: 'UTF-8' }, Html: { Data: message.html, Charset: 'UTF-8' } }
            }
          }
        })
        const out = await client.send(command, { abortSignal: signal })
        return out.MessageId ?? null
      } catch (err) {
        const e = err as SesError
        throw new DeliveryError(sesFailure(e), `${e.name}: ${e.message}`, { cause: err })
      }
    },
    close () { ses().then(({ client }) => { client.destroy() }) }
  }
}

/** The transport MAIL_TRANSPORT names (default: smtp when MAIL_HOST is set, else log). */
export function createTransport (config: Config, log: FastifyBaseLogger): Transport {
  const name = mailTransport(config)
  if (name === 'smtp') return smtpTransport(config)
  if (name === 'ses') return sesTransport(config)
  return logTransport(log)
}
