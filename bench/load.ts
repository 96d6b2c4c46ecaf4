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
  /** A file of refresh tokens, one per line, each sent once as {"refresh_token": …}. */
  refreshTokensFile?: string
  connections: number
  duration: number
  /** Requests per second in total (0 = as fast as possible). */
  rate?: number
}

export interface LoadResult {
  requests: number
  rps: number
  p50: number
  p99: number
  errors: number
  timeouts: number
  non2xx: number
  statusCodes: Record<string, number>
}

const job = JSON.parse(process.argv[2] as string) as LoadJob
const tokens = job.refreshTokensFile === undefined ? [] : readFileSync(job.refreshTokensFile, 'utf8').split('\n').filter(Boolean)
let next = 0

const statusCodes: Record<string, number> = {}
const instance = autocannon({
  url: job.url,
  method: job.method,
  headers: { 'content-type': 'application/json', ...job.headers },
  body: job.body,
  idReplacement: job.body?.includes('[<id>]') ?? false,
  connections: job.connections,
  duration: job.duration,
  overallRate: job.rate !== undefined && job.rate > 0 ? job.rate : undefined,
  // Each refresh token may be used once: hand out the next one to every request.
  requests: tokens.length > 0
    ? [{ setupRequest: (req: autocannon.Request) => ({ ...req, body: JSON.stringify({ refresh_token: tokens[next++ % tokens.length] }) }) }]
    : undefined,
  timeout: 10
}, (err, result) => {
  if (err !== null && err !== undefined) throw err
  const out: LoadResult = {
    requests: result.requests.total,
    rps: result.requests.total / (result.duration || job.duration),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCodes
  }
  process.stdout.write(`${JSON.stringify(out)}\n`)
})
instance.on('response', (_client: unknown, statusCode: number) => { statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1 })
