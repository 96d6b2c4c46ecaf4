import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyServerOptions } from 'fastify'
import type { DestinationStream } from 'pino'
import type { Config } from './config.ts'
import { trustProxy } from './config.ts'
import { logStream } from './log/destination.ts'

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

/**
 * Fastify options shared by the server and the tests, so that tests run the
 * app exactly as production does. Logs go to `stdout` (default: the process's;
 * tests pass a capture), and with FIREHOSE_DELIVERY_STREAM also to Firehose.
 */
export function serverOptions (config: Config, { stdout }: { stdout?: DestinationStream } = {}): FastifyServerOptions {
  const stream = logStream(config, stdout)
  return {
    logger: {
      ...(stream !== undefined && { stream }),
      level: config.LOG_LEVEL,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: {
        req (req) {
          return { method: req.method, url: req.url, host: req.host, remoteAddress: req.ip, userAgent: req.headers['user-agent'] }
        }
      }
    },
    genReqId,
    requestIdHeader: false,
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
