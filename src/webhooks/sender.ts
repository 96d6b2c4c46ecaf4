import { createHmac, randomBytes } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import { checkLiteralTarget, filteringLookup, RefusedTargetError, type Resolve } from './targets.ts'

/** The prefix of a Standard Webhooks signing secret; base64 of the key follows. */
export const SECRET_PREFIX = 'whsec_'

/** A new signing secret: `whsec_` and 32 random bytes in base64. */
export function newSigningSecret (): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64')
}

/**
 * The Standard Webhooks signature: HMAC-SHA256 of `id.timestamp.body` under
 * the secret's key, as `v1,<base64>`.
 */
export function sign (secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64')
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`
}

export interface Message {
  url: string
  /** webhook-id: the same on every try of one message. */
  id: string
  body: string
  /** Secrets that sign it: the current one, and during a rotation the previous one too. */
  secrets: string[]
}

export interface SendResult {
  /** The receiver's status code, or null when no answer came (refused, unreachable, timed out). */
  statusCode: number | null
  /** The start of the response body. */
  response: string | null
  error: string | null
  durationMs: number
  /** True for a 2xx. */
  ok: boolean
}

/** How much of a receiver's answer is kept. */
export const RESPONSE_LIMIT = 1024

export interface SenderOptions {
  timeout: number
  /** WEBHOOK_ALLOW_PRIVATE: skip the SSRF rules (tests, local development). */
  allowPrivate: boolean
  /** The resolver behind the SSRF-checking lookup (tests give one that answers without DNS). */
  resolve?: Resolve
  userAgent?: string
}

/**
 * Sends one webhook message: a POST with the Standard Webhooks headers, over
 * a fresh connection to an address the SSRF rules allow, cut off after
 * `timeout` ms whatever the receiver does (a slow header, a slow body). Never
 * throws: the outcome, with what the receiver answered, is the result.
 */
export function createSender (opts: SenderOptions) {
  const lookup = opts.allowPrivate ? undefined : filteringLookup(opts.resolve)
  return async function send (message: Message, now: number = Date.now()): Promise<SendResult> {
    const started = performance.now()
    const durationMs = (): number => Math.round(performance.now() - started)
    const timestamp = Math.floor(now / 1000)
    try {
      const url = new URL(message.url)
      if (!opts.allowPrivate) checkLiteralTarget(url)
      const signature = message.secrets.map((s) => sign(s, message.id, timestamp, message.body)).join(' ')
      const { statusCode, response } = await post(url, {
        'content-type': 'application/json',
        'user-agent': opts.userAgent ?? 'Roster-Webhooks/1',
        'webhook-id': message.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signature
      }, message.body, lookup, opts.timeout)
      const ok = statusCode >= 200 && statusCode < 300
      return { statusCode, response, error: ok ? null : `HTTP ${statusCode}`, durationMs: durationMs(), ok }
    } catch (err) {
      const e = err as Error & { statusCode?: number }
      const error = e instanceof RefusedTargetError ? `refused: ${e.message}` : e.name === 'TimeoutError' ? `timed out after ${opts.timeout} ms` : e.message
      return { statusCode: e.statusCode ?? null, response: null, error: error.slice(0, 1000), durationMs: durationMs(), ok: false }
    }
  }
}

export type Send = ReturnType<typeof createSender>

/** One POST; resolves with the status and the body's first RESPONSE_LIMIT bytes (the rest is not read). */
async function post (url: URL, headers: Record<string, string>, body: string, lookup: ReturnType<typeof filteringLookup> | undefined, timeout: number): Promise<{ statusCode: number, response: string }> {
  const signal = AbortSignal.timeout(timeout)
  const request = url.protocol === 'https:' ? https.request : http.request
  return await new Promise((resolve, reject) => {
    /** The status, once the answer began: a failure after it (the timeout mid-body) still shows it. */
    let statusCode: number | undefined
    const fail = (err: Error): void => { reject(Object.assign(signal.aborted ? signal.reason as Error : err, { statusCode })) }
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent: false, signal, ...(lookup === undefined ? {} : { lookup }) }, (res) => {
      statusCode = res.statusCode
      const chunks: Buffer[] = []
      let size = 0
      const done = (): void => {
        resolve({ statusCode: res.statusCode as number, response: Buffer.concat(chunks).toString('utf8').slice(0, RESPONSE_LIMIT) })
        res.destroy()
      }
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk)
        size += chunk.length
        if (size >= RESPONSE_LIMIT) done()
      })
      res.on('end', done)
      // Cut off mid-body (the timeout), or the receiver closed it: a failure, with the status that came.
      res.on('close', () => { fail(new Error('the connection closed before the answer ended')) })
    })
    req.on('error', fail)
    req.end(body)
  })
}
