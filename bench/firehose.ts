/**
 * `npm run bench:firehose [-- --duration 30] [--clients 16]`
 *
 * The log-shipping acceptance run by hand: the production build
 * (dist/src/server.js; run `npm run build` first) on an embedded PostgreSQL,
 * shipping to a local Firehose on 127.0.0.1, under a mixed HTTP load on
 * loopback for --duration seconds, then SIGTERM while the load goes on.
 * Prints what happened and exits non-zero unless the process exited 0 and
 * every stdout line reached Firehose exactly once, in order.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startEmbeddedPostgres } from '../db/embedded.ts'
import { rootDir } from '../src/infra/paths.ts'
import { firehosePeer } from '../test/log/firehose-peer.ts'
import { runAcceptance } from '../test/log/acceptance.ts'

const { values: args } = parseArgs({ options: { duration: { type: 'string', default: '30' }, clients: { type: 'string', default: '16' } } })
const seconds = Math.min(Math.max(Number(args.duration), 1), 120)
const server = join(rootDir, 'dist', 'src', 'server.js')
if (!existsSync(server)) throw new Error('run `npm run build` first')

const cleanups: Array<() => unknown> = []
const work = await mkdtemp(join(tmpdir(), 'roster-firehose-'))
await chmod(work, 0o755)
const postgres = await startEmbeddedPostgres(join(work, 'pg'), { database: 'bench' })
try {
  const peer = await firehosePeer({ after: (fn) => { cleanups.push(fn) } })
  const run = await runAcceptance({ args: [server], databaseUrl: postgres.url, peer, loadMs: seconds * 1000, clients: Number(args.clients) })
  const exact = peer.delivered.length === run.stdout.length && peer.delivered.every((r, i) => r === run.stdout[i])
  const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0)
  const summary = {
    seconds,
    clients: Number(args.clients),
    exitCode: run.code,
    shutdownMs: run.shutdownMs,
    responsesBeforeSigterm: { total: sum(run.before), ...run.before },
    responsesAfterSigterm: run.after,
    stdoutLines: run.stdout.length,
    recordsDelivered: peer.delivered.length,
    putRecordBatchCalls: peer.calls.length,
    largestCall: Math.max(...peer.calls.map((c) => c.records.length)),
    refusedCalls: peer.invalid.length,
    everyLineExactlyOnceInOrder: exact
  }
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
  process.exitCode = run.code === 0 && exact ? 0 : 1
} finally {
  for (const fn of cleanups) await fn()
  await postgres.stop()
  await rm(work, { recursive: true, force: true })
}
