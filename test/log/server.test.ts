/**
 * Acceptance of log shipping: the real server process under a mixed load,
 * SIGTERM mid-load; every line it wrote to stdout reaches the local Firehose
 * exactly once, in order: the lines of the last moments (the requests just
 * before SIGTERM, the shutdown's own lines) only get there through the flush
 * at exit (pino ends the transport on process exit; its close sends the rest).
 */
import t from 'tap'
import { join } from 'node:path'
import { createTestDatabase } from '../helper.ts'
import { rootDir } from '../../src/infra/paths.ts'
import { firehosePeer } from './firehose-peer.ts'
import { runAcceptance } from './acceptance.ts'

t.test('under load, SIGTERM: exit 0 and every stdout line reached Firehose exactly once, in order', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const peer = await firehosePeer(t)
  const run = await runAcceptance({ args: [...process.execArgv, join(rootDir, 'src/server.ts')], databaseUrl, peer, loadMs: 1000, minResponses: 200, clients: 6 })
  t.equal(run.code, 0, run.code === 0 ? 'exit 0' : run.stderr)
  const lines = run.stdout.map((l) => JSON.parse(l) as { msg?: string, reqId?: string })
  t.ok(lines.filter((l) => l.msg === 'request completed').length >= 200, `${lines.length} lines under load`)
  t.ok(lines.some((l) => l.msg === 'shutting down'), 'the shutdown is logged')
  t.same(peer.invalid, [], 'every call within the protocol and limits')
  t.equal(peer.delivered.length, run.stdout.length, `${peer.delivered.length} records for ${run.stdout.length} lines`)
  // stdout may show the last lines of a shutdown out of order (its buffer is flushed at exit, after a
  // line written synchronously); Firehose gets every line in the order it was logged.
  const time = (line: string): number => (JSON.parse(line) as { time: number }).time
  const byTime = (ls: string[]): string[] => [...ls].sort((a, b) => time(a) - time(b))
  t.same(peer.delivered, byTime(peer.delivered), 'Firehose received the lines in the order they were logged')
  t.same(peer.delivered, byTime(run.stdout), 'the same lines as stdout, each once')
  t.equal(run.before['500'] ?? 0, 0, 'no server errors')
  t.equal(run.before.error ?? 0, 0, 'no failed requests before SIGTERM')
  t.ok(['200', '400', '404', '405'].every((status) => (run.before[status] ?? 0) > 0), `a mixed load: ${JSON.stringify(run.before)}`)
})
