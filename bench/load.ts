/**
 * One autocannon run, in a process of its own so that the load generator
 * never shares an event loop with a server. Reads its job as JSON from argv,
 * prints the summary as JSON on stdout.
 */
import autocannon from 'autocannon'
import { readFileSync } from 'node:fs'

export interface LoadJob {
  url: string
  method: 'GET' | 'POST' | 'PATCH'
  headers?: Record<string, string>
  /** Body; `[<id>]` is replaced by a unique id per request. */
  body?: string
  /**
   * A file of refresh tokens, one per line, each sent once as {"refresh_token": …}. Never more
   * requests than tokens are sent: when they run out, the run ends early (`tokensRanOut`), so a
   * token is never presented twice and a 401 is never the benchmark's own doing.
   */
  refreshTokensFile?: string
  connections: number
  duration: number
  /** Requests per second in total (0 = as fast as possible). */
  rate?: number
  /** The statuses a correct answer has (default: any 2xx). */
  expect?: number[]
}

/** Answers that were not what the job expects: how many, by status and problem code, with one body. */
export interface WrongAnswer { status: number, code: string, count: number, sample: string }

export interface LoadResult {
  requests: number
  /** Seconds the run lasted (shorter than asked when the refresh tokens ran out). */
  seconds: number
  rps: number
  p50: number
  p99: number
  errors: number
  timeouts: number
  non2xx: number
  statusCodes: Record<string, number>
  /** Answers with another status than expected (the server's fault, or an error of this harness: see `tokensRanOut`). */
  wrong: WrongAnswer[]
  /** True when the run stopped early because every refresh token had been sent. */
  tokensRanOut: boolean
}

const job = JSON.parse(process.argv[2] as string) as LoadJob
const tokens = job.refreshTokensFile === undefined ? [] : readFileSync(job.refreshTokensFile, 'utf8').split('\n').filter(Boolean)
let next = 0

const statusCodes: Record<string, number> = {}
const wrong = new Map<string, WrongAnswer>()
const expected = (status: number): boolean => job.expect === undefined ? status >= 200 && status < 300 : job.expect.includes(status)
/** Records an unexpected answer under its status and problem+json `code` (the body's start when it has none). */
function onResponse (status: number, body: string): void {
  if (expected(status)) return
  let code: string
  try {
    code = String((JSON.parse(body) as { code?: unknown }).code ?? body.slice(0, 60))
  } catch {
    code = body.slice(0, 60)
  }
  const key = `${status} ${code}`
  const seen = wrong.get(key)
  if (seen !== undefined) seen.count++
  else if (wrong.size < 20) wrong.set(key, { status, code, count: 1, sample: body.slice(0, 300) })
}

const instance = autocannon({
  url: job.url,
  method: job.method,
  headers: { 'content-type': 'application/json', ...job.headers },
  body: job.body,
  idReplacement: job.body?.includes('[<id>]') ?? false,
  connections: job.connections,
  duration: job.duration,
  overallRate: job.rate !== undefined && job.rate > 0 ? job.rate : undefined,
  // autocannon builds at most this many requests in all (each connection stops at its share).
  maxOverallRequests: tokens.length > 0 ? tokens.length : undefined,
  requests: [tokens.length > 0
    // Each refresh token may be used once: hand out the next one to every request built.
    ? { setupRequest: (req: autocannon.Request) => ({ ...req, body: JSON.stringify({ refresh_token: tokens[next++] }) }), onResponse }
    : { onResponse }],
  timeout: 10
}, (err, result) => {
  if (err !== null && err !== undefined) throw err
  if (next > tokens.length) throw new Error(`harness fault: ${next} requests built for ${tokens.length} refresh tokens`)
  const seconds = result.duration || job.duration
  const out: LoadResult = {
    requests: result.requests.total,
    seconds,
    rps: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCodes,
    wrong: [...wrong.values()],
    tokensRanOut: tokens.length > 0 && next >= tokens.length
  }
  process.stdout.write(`${JSON.stringify(out)}\n`)
})
instance.on('response', (_client: unknown, statusCode: number) => { statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1 })
