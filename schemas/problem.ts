import { Type, type TSchema } from '@sinclair/typebox'

/** RFC 9457 problem details: the body of every error Roster answers. */
export const Problem = Type.Object({
  type: Type.String({ description: 'URI reference naming the problem type.' }),
  title: Type.String({ description: 'Short summary of the problem type.' }),
  status: Type.Integer({ minimum: 400, maximum: 599 }),
  detail: Type.String({ description: 'What went wrong with this request.' }),
  instance: Type.String({ description: 'The request path.' }),
  code: Type.String({ description: 'Stable machine-readable error code.' }),
  requestId: Type.Optional(Type.String()),
  errors: Type.Optional(Type.Array(Type.Object({
    path: Type.String({ description: 'JSON pointer of the offending value, e.g. /body/email.' }),
    message: Type.String()
  }, { additionalProperties: false })))
}, { $id: 'Problem', additionalProperties: false, description: 'application/problem+json (RFC 9457)' })

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout'
}

export function statusTitle (status: number): string {
  return TITLES[status] ?? 'Error'
}

/**
 * Response schema entries for the given error statuses, to spread into a
 * route's `response`: `response: { 200: User, ...problems(400, 401, 404) }`.
 * 500 and 503 are always added: any route can answer them.
 */
export function problems (...statuses: number[]): Record<number, ProblemResponse> {
  const out: Record<number, ProblemResponse> = {}
  for (const status of new Set([...statuses, 500, 503])) {
    out[status] = {
      description: statusTitle(status),
      ...(RETRY_STATUSES.has(status) ? { headers: { 'Retry-After': RETRY_AFTER } } : {}),
      content: { 'application/problem+json': { schema: Type.Ref(Problem) } }
    }
  }
  return out
}

/** Statuses answered with a Retry-After header. */
const RETRY_STATUSES = new Set([429, 503])
const RETRY_AFTER = { type: 'integer', minimum: 0, description: 'Seconds to wait before trying again.' }

export interface ProblemResponse {
  description: string
  headers?: Record<string, unknown>
  content: { 'application/problem+json': { schema: TSchema } }
}
