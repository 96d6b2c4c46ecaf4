import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify'
import { stdSerializers, type DestinationStream } from 'pino'
import { clientErrorProblem, problemBody, sendProblem } from './infra/problem.ts'
import { statusTitle } from '../schemas/problem.ts'
import { FASTIFY_CODES } from './infra/errors.ts'
import { isScimPath, scimErrorBody } from './scim/errors.ts'
import type { Config } from './config.ts'
import { trustProxy } from './config.ts'
import { logStream } from './log/destination.ts'
import { buildValidator } from './infra/validation.ts'
import { buildSerializer } from './infra/serialization.ts'
import { requestActor } from '../plugins/auth.ts'

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
const SECRET_QUERY = new Set(['token', 'access_token', 'refresh_token', 'code', 'password', 'client_secret'])

/** A query parameter's name as a server would read it: percent-decoded, `+` a space, without `[]`; null when it cannot be decoded. */
function parameterName (raw: string): string | null {
  try {
    return decodeURIComponent(raw.replaceAll('+', ' ')).trim().toLowerCase().replace(/\[\]$/, '')
  } catch {
    return null
  }
}

/**
 * The URL as logged: the values of credential-carrying query parameters are
 * replaced by [redacted], however their names are written (`?%74oken=`,
 * `?TOKEN=`, `?token[]=`); so is the value of a name that cannot be decoded.
 */
export function redactUrl (url: string): string {
  const q = url.indexOf('?')
  if (q === -1) return url
  const hash = url.indexOf('#', q)
  const end = hash === -1 ? url.length : hash
  const pairs = url.slice(q + 1, end).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    if (eq === -1) return pair
    const name = parameterName(pair.slice(0, eq))
    return name === null || SECRET_QUERY.has(name) ? `${pair.slice(0, eq)}=[redacted]` : pair
  })
  return `${url.slice(0, q)}?${pairs.join('&')}${url.slice(end)}`
}

/** drizzle's DrizzleQueryError: the SQL text, and its bound values in `params`, message and stack. */
function isFailedQuery (err: unknown): err is Error & { query: string, params: unknown } {
  return err instanceof Error && typeof (err as { query?: unknown }).query === 'string' && 'params' in err
}

/**
 * pino's error serializer, minus what must never reach a log. A failed
 * query's bound values (drizzle writes them into its error's message, stack
 * and `params`) may be a password hash or the token of a queued email: only
 * the SQL text is kept. node-postgres's pool hangs the whole connection
 * (internal state, cancel key) on a connection error as `client`: dropped.
 */
export function serializeError (err: Error): ReturnType<typeof stdSerializers.err> {
  const out = stdSerializers.err(err)
  // pino hands over whatever was logged as `err`; it serializes only error-like values.
  if (!(err as unknown instanceof Error)) return out
  delete out.client
  if (isFailedQuery(err)) delete out.params
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (!isFailedQuery(e)) continue
    const safe = `Failed query: ${e.query}`
    out.message = out.message.replaceAll(e.message, safe)
    out.stack = out.stack.replaceAll(e.message, safe)
  }
  return out
}

/**
 * The answer as its log line shows it: status, the request's method and route
 * pattern (`/users/:id`, never the URL; absent when no route matched) and its
 * actor (`{ kind: 'admin', id }` once authenticated).
 */
export function completedRequest (reply: FastifyReply): { statusCode: number, method: string, route: string | undefined, actor: { kind: string, id: string } | undefined } {
  const { request } = reply
  return { statusCode: reply.statusCode, method: request.method, route: request.routeOptions.url, actor: requestActor(request) }
}

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
        err: serializeError,
        req (req) {
          return { method: req.method, url: redactUrl(req.url), host: req.host, remoteAddress: req.ip, userAgent: req.headers['user-agent'] }
        },
        // The "request completed" line (with `responseTime`, ms): who did what, how it ended, how long it took.
        res: (reply) => completedRequest(reply as FastifyReply)
      }
    },
    // Plugins may take long to start: a first start initialises the embedded PostgreSQL, and the db plugin
    // applies pending migrations (migration 0004's trigram indexes over millions of rows take minutes).
    pluginTimeout: 300_000,
    genReqId,
    // Malformed URLs (FST_ERR_BAD_URL) and overlong path parameters (FST_ERR_MAX_PARAM_LENGTH) are refused
    // before routing, and before the app's error handler: answer them as problem+json here.
    frameworkErrors (err, request, reply) {
      const status = err.statusCode as number
      request.log.info({ code: err.code, statusCode: status, detail: err.message }, 'request rejected')
      reply.header('x-request-id', request.id)
      // Under /scim/v2 a SCIM error (RFC 7644 §3.12), as every other answer there.
      if (isScimPath(request.url)) (reply as unknown as FastifyReply).code(status).type('application/scim+json; charset=utf-8').send(scimErrorBody(status, err.message))
      else sendProblem(request as FastifyRequest, reply as unknown as FastifyReply, status, FASTIFY_CODES[err.code] as string, err.message)
    },
    // Requests node's HTTP parser refuses (431, 414, a malformed request line, 408) never reach Fastify:
    // answer them as problem+json with a request id too, then close the connection as node does.
    clientErrorHandler (err, socket) {
      if ((err as { code?: string }).code === 'ECONNRESET' || socket.destroyed) return
      const { status, code, detail, instance } = clientErrorProblem(err as unknown as Parameters<typeof clientErrorProblem>[0])
      const id = randomUUID()
      // Fastify calls it with the server instance as `this`.
      const log = (this as unknown as FastifyInstance).log
      log.info({ reqId: id, code, statusCode: status, parserError: (err as { code?: string }).code }, 'request rejected before routing')
      if (socket.writable) {
        const body = JSON.stringify(problemBody(status, code, detail, instance, id))
        socket.write(`HTTP/1.1 ${status} ${statusTitle(status)}\r\nContent-Type: application/problem+json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${id}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`)
      }
      socket.destroy(err)
    },
    requestIdHeader: false,
    trustProxy: trustProxy(config.TRUST_PROXY),
    bodyLimit: config.BODY_LIMIT,
    requestTimeout: config.REQUEST_TIMEOUT,
    connectionTimeout: config.REQUEST_TIMEOUT,
    keepAliveTimeout: 72_000,
    // During a drain, a request that still arrives on an open keep-alive connection is served
    // (with Connection: close) rather than refused with a 503: it was sent before the client could know.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // Bodies are not coerced; query strings, path parameters and headers are, strictly (src/infra/validation.ts).
    // Validators and serializers are compiled on their first use (src/infra/validation.ts, serialization.ts).
    schemaController: { compilersFactory: { buildValidator: buildValidator as never, buildSerializer: buildSerializer as never } },
    ajv: {
      customOptions: {
        allErrors: true,
        removeAdditional: false,
        useDefaults: true
      }
    }
  }
}
