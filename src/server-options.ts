import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyServerOptions } from 'fastify'
import pino from 'pino'
import type { Config } from './config.ts'
import { trustProxy } from './config.ts'

/** A client-supplied request id is kept only when it is short and plain. */
const SANE_REQUEST_ID = /^[\w.:@/+=-]{1,128}$/

export function genReqId (req: IncomingMessage): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID()
}

/** Paths redacted from every log line: credentials in headers and any password or token field. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.currentPassword',
  '*.newPassword',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.accessToken',
  '*.refreshToken',
  '*.secret',
  '*.*.password',
  '*.*.currentPassword',
  '*.*.token',
  '*.*.access_token',
  '*.*.refresh_token',
  'password',
  'token'
]

/** Query parameters that carry credentials (emailed links: `?token=…`); their values never reach a log line. */
const SECRET_QUERY = /([?&](?:token|access_token|refresh_token|code|password)=)[^&#]*/gi

/** The URL as logged: the values of credential-carrying query parameters are replaced by [redacted]. */
export function redactUrl (url: string): string {
  return url.includes('?') ? url.replace(SECRET_QUERY, '$1[redacted]') : url
}

/**
 * pino's error serializer, minus the bound parameters a failed drizzle query
 * carries in `params` and in its message ("Failed query: …\nparams: …"):
 * they may hold password hashes, token hashes and email addresses.
 */
export function serializeError (err: Error): { type: string, message: string, stack: string, [key: string]: unknown } {
  const out = pino.stdSerializers.err(err) as unknown as { type: string, message: string, stack: string, [key: string]: unknown }
  if (typeof out.query === 'string' && 'params' in out) {
    out.params = '[redacted]'
    const cause = (err as { cause?: { message?: string } }).cause?.message
    out.message = String(out.message).replace(/\nparams: [\s\S]*$/, `\nparams: [redacted]${cause === undefined ? '' : `: ${cause}`}`)
    out.stack = String(out.stack).replace(/\nparams: [\s\S]*?(?=\n {4}at )/, '\nparams: [redacted]')
  }
  return out
}

/**
 * Fastify options shared by the server and the tests, so that tests run the
 * app exactly as production does. `logger` may be overridden by the caller
 * (tests pass a stream; the operations plugin adds transports).
 */
export function serverOptions (config: Config): FastifyServerOptions {
  return {
    logger: {
      level: config.LOG_LEVEL,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: {
        req (req) {
          return { method: req.method, url: redactUrl(req.url), host: req.host, remoteAddress: req.ip, userAgent: req.headers['user-agent'] }
        },
        err: serializeError
      }
    },
    genReqId,
    requestIdHeader: false,
    // avvio's 10 s default per plugin is short for a first start that loads every
    // module (and may initdb an embedded PostgreSQL) on a small, busy machine.
    pluginTimeout: 60_000,
    trustProxy: trustProxy(config.TRUST_PROXY),
    bodyLimit: config.BODY_LIMIT,
    requestTimeout: config.REQUEST_TIMEOUT,
    connectionTimeout: config.REQUEST_TIMEOUT,
    keepAliveTimeout: 72_000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    ajv: {
      customOptions: {
        allErrors: true,
        coerceTypes: 'array',
        removeAdditional: false,
        useDefaults: true
      }
    }
  }
}
