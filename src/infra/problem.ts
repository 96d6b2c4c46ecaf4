import type { ErrorObject } from 'ajv'
import type { FastifyError, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { HTTPMethod } from 'find-my-way'
import { problems, statusTitle } from '../../schemas/problem.ts'
import { isDatabaseUnavailable } from './database.ts'
import { errors, FASTIFY_CODES } from './errors.ts'
import { countDeferred } from './rate-limit-store.ts'

/**
 * THE error-to-problem mapping: every error Roster answers becomes
 * application/problem+json (RFC 9457) here, whether the app's error handler,
 * its not-found handler or the framework-error hook (src/server-options.ts)
 * meets it.
 */

/** Validation issues as `{path, message}`, path a JSON pointer into the request: /body/email. */
export function validationErrors (err: FastifyError): Array<{ path: string, message: string }> {
  return issues(err.validation as ErrorObject[], `/${err.validationContext as string}`)
}

/** ajv's errors as `{path, message}`, each path a JSON pointer below `prefix` (e.g. a row of an import: ''). */
export function issues (found: readonly ErrorObject[], prefix: string): Array<{ path: string, message: string }> {
  return found.map((v) => {
    const path = `${prefix}${v.instancePath}`
    if (v.keyword === 'required') return { path: `${path}/${v.params.missingProperty as string}`, message: 'is required' }
    if (v.keyword === 'additionalProperties') return { path: `${path}/${v.params.additionalProperty as string}`, message: 'is not allowed' }
    return { path, message: v.message as string }
  })
}

/**
 * Adds to a route's documented responses the errors its shape implies, so the
 * OpenAPI document lists every status a route really answers: 400 when
 * anything is validated, 400/413/415 when it takes a body (any method but GET
 * and HEAD may be sent one), 414 when it has path parameters, 401 when it
 * needs a token, 403 when it needs a permission. Routes without a response schema (third-party UI routes) are left alone.
 */
export function documentImpliedErrors (route: RouteOptions): void {
  const schema = route.schema as { body?: unknown, querystring?: unknown, params?: unknown, headers?: unknown, response?: Record<string, unknown> } | undefined
  if (schema?.response === undefined) return
  const implied: number[] = []
  // Fastify parses a body sent with any method but GET and HEAD, whether or not the route declares one.
  const methods = ([] as string[]).concat(route.method)
  if (schema.body !== undefined || methods.some((m) => m !== 'GET' && m !== 'HEAD')) implied.push(400, 413, 415)
  if (schema.querystring !== undefined || schema.params !== undefined || schema.headers !== undefined) implied.push(400)
  // A path parameter longer than the router's maxParamLength is refused before routing.
  if (route.url.includes(':')) implied.push(414)
  // Every authenticated route declares a permission (plugins/auth.ts): one the caller may lack.
  if (route.config?.public !== true) implied.push(401, 403)
  schema.response = { ...problems(...implied), ...schema.response }
}

function problemCode (err: FastifyError, status: number): string {
  if (err.code?.startsWith('ROSTER_') === true) return err.code
  const mapped = FASTIFY_CODES[err.code]
  if (mapped !== undefined) return mapped
  if (status === 503) return 'ROSTER_SERVICE_UNAVAILABLE'
  return status >= 500 ? 'ROSTER_INTERNAL_ERROR' : 'ROSTER_BAD_REQUEST'
}

/** Problem `type`: a relative URI naming the problem, e.g. /problems/validation-failed. */
function problemType (code: string): string {
  return `/problems/${code.replace(/^ROSTER_/, '').toLowerCase().replace(/_/g, '-')}`
}

/** The body of every problem+json answer. */
export function problemBody (status: number, code: string, detail: string, instance: string, requestId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: problemType(code), title: statusTitle(status), status, detail, instance, code, requestId, ...extra }
}

export function sendProblem (request: FastifyRequest, reply: FastifyReply, status: number, code: string, detail: string, extra: Record<string, unknown> = {}): FastifyReply {
  return reply
    .code(status)
    .type('application/problem+json')
    .send(problemBody(status, code, detail, request.url.split('?')[0] as string, request.id, extra))
}

/** A request line longer than this, with no end in sight, is a URI too long (414) rather than too many header bytes (431). */
const LONG_REQUEST_LINE = 8192

/**
 * The problem for a request node's HTTP parser refused before Fastify saw it
 * (the server's clientError): 408 when it came too slowly, 414 when its request
 * line alone overflowed the header limit, 431 when its headers did, else 400
 * (a malformed request line or header). `instance` is the request's path when
 * one can be read from what arrived, never its query.
 */
export function clientErrorProblem (err: Error & { code?: string, rawPacket?: Buffer }): { status: number, code: string, detail: string, instance: string } {
  const raw = err.rawPacket?.toString('latin1', 0, LONG_REQUEST_LINE + 2) ?? ''
  const instance = /^[A-Z]{1,16} (\/[\x21-\x3e\x40-\x7e]{0,200})[ ?]/.exec(raw)?.[1] ?? ''
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, code: 'ROSTER_REQUEST_TIMEOUT', detail: 'The request did not arrive in time', instance }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    if (/^[A-Z]{1,16} /.test(raw) && !raw.includes('\r\n')) return { status: 414, code: 'ROSTER_URI_TOO_LONG', detail: 'The request line is longer than the server accepts', instance }
    return { status: 431, code: 'ROSTER_HEADERS_TOO_LARGE', detail: 'The request headers are larger than the server accepts', instance }
  }
  return { status: 400, code: 'ROSTER_BAD_REQUEST', detail: `The request is not valid HTTP (${err.code ?? 'unreadable'})`, instance }
}

/** What an error is answered with: status, code, detail and (validation) the errors by field. */
export interface ErrorAnswer { status: number, code: string, detail: string, errors?: Array<{ path: string, message: string }> }

/**
 * THE error triage, shared by every error format (problem+json here, SCIM's
 * under /scim/v2): the status an error deserves, logged at its level, with
 * Retry-After set; the code and the detail a client may see.
 */
export function triageError (err: FastifyError & { retryAfter?: number, logReason?: string }, request: FastifyRequest, reply: FastifyReply): ErrorAnswer {
  let status = err.statusCode ?? 500
  if (status < 400 || status > 599) status = 500
  if (status === 500 && isDatabaseUnavailable(err)) status = 503
  // THE place Retry-After is set: errors carry it (withRetryAfter); any other 503 says 5 seconds.
  if (typeof err.retryAfter === 'number') reply.header('retry-after', String(err.retryAfter))
  else if (status === 503) reply.header('retry-after', '5')
  // Step-up (src/infra/actor.ts): RFC 9470's challenge.
  if (err.code === 'ROSTER_REAUTHENTICATION_REQUIRED') reply.header('www-authenticate', 'Bearer realm="roster", error="insufficient_user_authentication", max_age=300')

  if (err.code === 'ROSTER_OVERLOADED') {
    // Load shedding is the system working: no stack, and no error-level noise while overloaded.
    request.log.warn({ code: err.code, statusCode: status }, 'request shed: overloaded')
  } else if (err.code === 'ROSTER_SERVICE_UNAVAILABLE') {
    // Said on purpose (readiness while draining or migrating): a state, not a fault.
    request.log.warn({ code: err.code, statusCode: status, detail: err.message }, 'service unavailable')
  } else if (status >= 500) {
    request.log.error({ err }, 'request failed')
  } else {
    request.log.info({ code: err.code, statusCode: status, detail: err.message, reason: err.logReason }, 'request rejected')
  }

  const code = problemCode(err, status)
  if (err.validation !== undefined) return { status: 400, code, detail: 'The request is not valid; see errors.', errors: validationErrors(err) }
  if (status === 503) return { status, code, detail: code === err.code ? err.message : 'The service is temporarily unavailable; try again shortly.' }
  if (status >= 500) return { status, code, detail: 'An unexpected error occurred. Quote the request id when reporting it.' }
  return { status, code, detail: err.message }
}

type AnsweredError = FastifyError & { retryAfter?: number, logReason?: string }

/**
 * The app's error handler: logs at the level the error deserves, sets
 * Retry-After, answers problem+json. A request whose rate-limit count was left
 * to its handler, failing before it, is counted first (./rate-limit-store.ts):
 * over the limit, it is answered the 429 instead.
 */
export function errorHandler (err: AnsweredError, request: FastifyRequest, reply: FastifyReply): FastifyReply | Promise<FastifyReply> {
  const answer = (error: AnsweredError): FastifyReply => {
    const { status, code, detail, errors: fields } = triageError(error, request, reply)
    return sendProblem(request, reply, status, code, detail, fields === undefined ? {} : { errors: fields })
  }
  const counting = countDeferred(request, reply)
  return counting === null ? answer(err) : counting.then(() => answer(err), answer)
}

/** The not-found handler over a router holding every route: 405 with Allow when the path exists for other methods, else 404. */
export function notFoundHandler (allRoutes: { find: (method: HTTPMethod, path: string) => unknown }) {
  return function notFound (request: FastifyRequest, reply: FastifyReply): never {
    const path = request.url.split('?')[0] as string
    const allowed = (['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as HTTPMethod[])
      .filter((m) => allRoutes.find(m, path) !== null)
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '))
      throw new errors.MethodNotAllowed(request.method, path)
    }
    throw new errors.RouteNotFound(request.method, path)
  }
}
