/**
 * The Firehose transport as the server runs it: in pino's worker thread,
 * behind the logger built by src/server-options.ts, against a local Firehose.
 */
import t from 'tap'
import { once } from 'node:events'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import pino, { type DestinationStream } from 'pino'
import { loadConfig } from '../../src/config.ts'
import { serverOptions } from '../../src/server-options.ts'
import { firehoseWorker, logStream } from '../../src/log/destination.ts'
import firehoseTransport, { type FirehoseTransportOptions } from '../../src/log/firehose-transport.ts'
import { LogCapture, waitUntil } from '../helper.ts'
import { firehosePeer, STREAM, type FirehosePeer } from './firehose-peer.ts'

type ThreadStream = DestinationStream & NodeJS.EventEmitter & { end: () => void, ref: () => void, flush: (cb: (err?: Error) => void) => void, worker: { terminate: () => Promise<number> } }

const env = (peer: FirehosePeer, extra: Record<string, string> = {}) => loadConfig({
  FIREHOSE_DELIVERY_STREAM: STREAM,
  FIREHOSE_ENDPOINT: peer.url,
  AWS_REGION: 'ap-southeast-2',
  AWS_KEY: 'AKIDTRANSPORT',
  AWS_SECRET: 'transport-secret',
  LOG_LEVEL: 'debug',
  ...extra
}, '/dev/null')

/** The transport inside a multistream from logStream(). */
const transportOf = (stream: DestinationStream | undefined): ThreadStream =>
  (stream as unknown as { streams: Array<{ stream: ThreadStream }> }).streams.find((s) => 'worker' in s.stream)?.stream as ThreadStream

const flush = async (transport: ThreadStream): Promise<void> => {
  await new Promise<void>((resolve, reject) => { transport.flush((err) => { if (err !== undefined && err !== null) reject(err); else resolve() }) })
}

/**
 * Flushes, then ends the transport as pino does at exit and waits for its
 * worker to finish. end() blocks this thread until the worker is done, and the
 * local Firehose answers on this thread: so the flush comes first here (the
 * flush at exit itself is tested with a process of its own, exit.test.ts).
 */
async function end (transport: ThreadStream): Promise<void> {
  await flush(transport)
  const closed = once(transport, 'close')
  transport.ref()
  transport.end()
  await closed
}

async function ready (transport: ThreadStream): Promise<void> {
  if ((transport as unknown as { ready: boolean }).ready) return
  await once(transport, 'ready')
}

t.test('without FIREHOSE_DELIVERY_STREAM the logger writes where it did before', async (t) => {
  const config = loadConfig({}, '/dev/null')
  t.equal(logStream(config), undefined, 'pino\'s own stdout')
  const capture = new LogCapture()
  t.equal(logStream(config, capture), capture)
  t.notOk('stream' in (serverOptions(config).logger as object))
})

t.test('the worker runs the compiled module from dist/, the TypeScript source (through a loader shim) from sources', async (t) => {
  t.same(firehoseWorker('file:///srv/roster/dist/src/log/destination.js'), { target: '/srv/roster/dist/src/log/firehose-transport.js', worker: {} })
  const fromSources = firehoseWorker()
  t.match(fromSources.target, /src\/log\/firehose-transport\.mjs$/)
  t.ok(existsSync(fromSources.target))
  t.same(fromSources.worker.execArgv, process.execArgv, 'the worker gets this process\'s loader')
})

t.test('every line goes to stdout and to Firehose, redacted, in order, each once', async (t) => {
  const peer = await firehosePeer(t)
  const capture = new LogCapture()
  const options = serverOptions(env(peer), { stdout: capture })
  const app = Fastify(options)
  const transport = transportOf((options.logger as { stream: DestinationStream }).stream)
  await ready(transport)
  for (let i = 0; i < 1200; i++) app.log.info({ i }, 'line')
  app.log.debug({ password: 'hunter2', user: { token: 'tok-123', secret: 'sec-456' } }, 'with secrets')
  // thread-stream's flush(cb) reaches the shipper in the worker and answers once Firehose has everything.
  await flush(transport)
  t.equal(peer.delivered.length, 1201, 'flushed')
  transport.write('{"n":1}\nnot json\n')
  await end(transport)
  t.same(peer.delivered.slice(1201), ['{"n":1}', 'not json'], 'lines shipped as written, even one that is not JSON')
  t.equal(capture.lines.length, 1201)
  t.same(peer.delivered.slice(0, 1201), capture.lines.map((l) => JSON.stringify(l)), 'the same lines as on stdout, in the same order')
  const last = JSON.parse(peer.delivered[1200] as string) as Record<string, unknown>
  t.match(last, { level: 20, msg: 'with secrets', password: '[redacted]', user: { token: '[redacted]', secret: '[redacted]' } })
  t.notMatch(peer.delivered.join('\n'), /hunter2|tok-123|sec-456/)
  t.match(peer.calls[0]?.authorization, /Credential=AKIDTRANSPORT\/\d{8}\/ap-southeast-2\/firehose\//)
  t.same(peer.invalid, [])
})

t.test('a dead transport worker is said once on stdout and logging goes on', async (t) => {
  const peer = await firehosePeer(t)
  const capture = new LogCapture()
  const stream = logStream(env(peer), capture) as DestinationStream
  const transport = transportOf(stream)
  await ready(transport)
  const log = pino({ level: 'info' }, stream)
  log.info('before')
  await waitUntil(() => capture.lines.length === 1, { what: 'the first line', timeout: 20_000 })
  const closed = new Promise((resolve) => transport.once('close', resolve))
  await transport.worker.terminate()
  await closed
  log.info('after 1')
  log.info('after 2')
  await waitUntil(() => capture.lines.length === 4, { what: 'the report and the lines after', timeout: 20_000 })
  t.match(capture.lines.map((l) => l.msg), ['before', /^firehose transport stopped, logs go to stdout only: /, 'after 1', 'after 2'])
})

t.test('in the worker: an outage fills the bounded buffer, drops the oldest, reports the count on its own fd', async (t) => {
  const peer = await firehosePeer(t)
  await peer.stop()
  const dir = t.testdir()
  const reportFile = join(dir, 'stdout')
  const fd = openSync(reportFile, 'w')
  t.teardown(() => { closeSync(fd) })
  const transport = pino.transport<FirehoseTransportOptions>({
    ...firehoseWorker(),
    options: { deliveryStream: STREAM, region: 'us-east-1', endpoint: peer.url, credentials: { accessKeyId: 'AKIDW', secretAccessKey: 'x' }, bufferBytes: 64 * 1024, retryBase: 5, retryMax: 20, reportInterval: 20, reportFd: fd }
  }) as unknown as ThreadStream
  await ready(transport)
  const lines = Array.from({ length: 2000 }, (_, n) => JSON.stringify({ n, pad: 'p'.repeat(100) }))
  for (const l of lines.slice(0, 1000)) transport.write(`${l}\n`)
  await waitUntil(() => readFileSync(reportFile, 'utf8').includes('ECONNREFUSED'), { what: 'a failure report', timeout: 20_000 })
  for (const l of lines.slice(1000)) transport.write(`${l}\n`)
  await waitUntil(() => /log lines dropped/.test(readFileSync(reportFile, 'utf8')), { what: 'a drop report', timeout: 20_000 })
  await peer.start()
  await end(transport)
  const reports = readFileSync(reportFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string, firehose: { dropped: number } })
  const dropped = reports.reduce((n, r) => n + r.firehose.dropped, 0)
  const got = peer.delivered.map((r) => (JSON.parse(r) as { n: number }).n)
  t.ok(dropped > 0, `${dropped} dropped`)
  t.equal(got.length + dropped, lines.length, 'every line delivered or counted in a report')
  t.ok(got.every((n, i) => i === 0 || n > (got[i - 1] as number)), 'in order, none twice')
  t.equal(got.at(-1), 1999, 'the newest kept')
  t.notOk(peer.delivered.some((r) => r.includes('firehose')), 'reports never go to Firehose')
})

t.test('a report that cannot be written (stdout gone) is lost, and the shipping goes on', async (t) => {
  const peer = await firehosePeer(t)
  await peer.stop()
  // A descriptor no process has: writeSync throws EBADF, as it throws EPIPE for a closed stdout.
  const stream = firehoseTransport({ deliveryStream: STREAM, region: 'us-east-1', endpoint: peer.url, credentials: { accessKeyId: 'AKIDW', secretAccessKey: 'x' }, bufferBytes: 64 * 1024, flushInterval: 1, retryBase: 5, retryMax: 20, reportInterval: 20, reportFd: 1 << 30 })
  stream.shipper.push('{"n":1}')
  await waitUntil(() => stream.shipper.stats().failedAttempts >= 3, { what: 'failed attempts, each reported', timeout: 20_000 })
  await peer.start()
  await waitUntil(() => peer.delivered.length === 1, { what: 'the line delivered once Firehose is back', timeout: 20_000 })
  await stream.shipper.close()
  t.same(peer.delivered, ['{"n":1}'])
})
