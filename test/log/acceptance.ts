/**
 * The log-shipping acceptance run, shared by test/log/server.test.ts (a few
 * seconds, from sources) and bench/firehose.ts (30 s by hand, the build): the
 * real server process ships to a local Firehose while a mixed load of real
 * HTTP requests (loopback only) runs; SIGTERM comes mid-load; the load goes on
 * until the process has exited.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '../../db/embedded.ts'
import { waitUntil } from '../helper.ts'
import { spawnCaptured } from '../process.ts'
import { STREAM, type FirehosePeer } from './firehose-peer.ts'

export interface AcceptanceOptions {
  /** Node arguments running the server: sources under the test loader, or dist/src/server.js. */
  args: string[]
  databaseUrl: string
  peer: FirehosePeer
  /** Milliseconds of load before SIGTERM, at least. */
  loadMs: number
  /** Responses to wait for before SIGTERM (bounded by 30 s of load), so that a slow machine still sees a load. */
  minResponses?: number
  /** Concurrent clients. */
  clients: number
  env?: Record<string, string>
}

export interface AcceptanceResult {
  code: number | null
  signal: NodeJS.Signals | null
  /** stdout, one entry per line (newline stripped, empty lines left out). */
  stdout: string[]
  stderr: string
  /** Responses by status, before and after SIGTERM; client errors (refused or cut connections) by phase. */
  before: Record<string, number>
  after: Record<string, number>
  /** Milliseconds from SIGTERM to exit. */
  shutdownMs: number
}

/** The mixed load: the service, health, docs, unknown routes, wrong methods, bad and foreign bodies. */
const REQUESTS: Array<{ method: string, path: string, body?: string, type?: string }> = [
  { method: 'GET', path: '/' },
  { method: 'GET', path: '/health/ready' },
  { method: 'GET', path: '/health/live' },
  { method: 'GET', path: '/no/such/route' },
  { method: 'POST', path: '/', body: '{"not json', type: 'application/json' },
  { method: 'DELETE', path: '/health/live' },
  { method: 'POST', path: '/health/ready', body: '<xml/>', type: 'application/xml' },
  { method: 'GET', path: '/apidocs/json' }
]

export async function runAcceptance (opts: AcceptanceOptions): Promise<AcceptanceResult> {
  const port = await freePort()
  const run = spawnCaptured(opts.args, {
    env: {
      ...process.env,
      DATABASE_URL: opts.databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      // A short pre-stop delay: the load goes on through it and through the drain.
      SHUTDOWN_DELAY: '500',
      FIREHOSE_DELIVERY_STREAM: STREAM,
      FIREHOSE_ENDPOINT: opts.peer.url,
      AWS_REGION: 'eu-west-1',
      AWS_KEY: 'AKIDACCEPTANCE',
      AWS_SECRET: 'acceptance-secret',
      ...opts.env
    }
  })
  const { child } = run
  const exited = run.exit
  const state = { running: true }
  exited.then(() => { state.running = false }, () => {})

  await waitUntil(() => !state.running || run.stdout().includes('Roster is up'), { timeout: 60_000 }).catch(() => {}) // checked below
  if (!run.stdout().includes('Roster is up')) {
    child.kill('SIGKILL')
    throw new Error(`the server did not start: ${run.stderr()}`)
  }

  const before: Record<string, number> = {}
  const after: Record<string, number> = {}
  let terminated = false
  const count = (key: string): void => {
    const phase = terminated ? after : before
    phase[key] = (phase[key] ?? 0) + 1
  }
  let n = 0
  const client = async (): Promise<void> => {
    while (state.running) {
      const r = REQUESTS[n++ % REQUESTS.length] as typeof REQUESTS[number]
      try {
        const res = await fetch(`http://127.0.0.1:${port}${r.path}`, {
          method: r.method,
          body: r.body,
          headers: { ...(r.type !== undefined && { 'content-type': r.type }), 'x-request-id': `load-${n}` },
          signal: AbortSignal.timeout(10_000)
        })
        await res.arrayBuffer()
        count(String(res.status))
      } catch {
        count('error')
        await sleep(5)
      }
    }
  }
  const clients = Array.from({ length: opts.clients }, client)
  const started = Date.now()
  const total = (): number => Object.values(before).reduce((a, b) => a + b, 0)
  while (Date.now() - started < opts.loadMs || (total() < (opts.minResponses ?? 0) && Date.now() - started < 30_000)) await sleep(20)
  terminated = true
  const sigterm = Date.now()
  child.kill('SIGTERM')
  const { code, signal } = await exited
  const shutdownMs = Date.now() - sigterm
  await Promise.all(clients)
  return { code, signal, stdout: run.stdout().split('\n').filter((l) => l !== ''), stderr: run.stderr(), before, after, shutdownMs }
}
