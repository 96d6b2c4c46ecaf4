/**
 * The Firehose shipper (batching, retries, the bounded buffer, close), run in
 * this process against a local Firehose that speaks the service's protocol.
 * test/log/transport.test.ts runs the same code in pino's worker thread.
 */
import t from 'tap'
import { FirehoseShipper, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_FIELD_BYTES, MAX_RECORD_BYTES, shrinkLine, toRecord, truncateUtf8, type ShipperOptions } from '../../src/log/firehose.ts'
import { firehoseOptions } from '../../src/log/destination.ts'
import { loadConfig } from '../../src/config.ts'
import { firehosePeer, STREAM, type FirehosePeer } from './firehose-peer.ts'
import type { TestContext } from '../helper.ts'
import { waitUntil } from '../helper.ts'

interface Report { level: number, msg: string, name: string, firehose: { dropped: number, failedAttempts: number, droppedTotal: number } }

const CREDENTIALS = { accessKeyId: 'AKIDROSTERTEST', secretAccessKey: 'not-a-real-secret' }

/** A shipper against `peer`, quick retries, reports captured; closed when the test ends. */
function ship (t: TestContext, peer: FirehosePeer, opts: Partial<ShipperOptions> = {}) {
  const reports: Report[] = []
  const shipper = new FirehoseShipper({
    deliveryStream: STREAM,
    region: 'eu-west-1',
    endpoint: peer.url,
    credentials: CREDENTIALS,
    bufferBytes: 16 * 1024 * 1024,
    retryBase: 5,
    retryMax: 40,
    report: (line) => { reports.push(JSON.parse(line) as Report) },
    ...opts
  })
  t.after(() => shipper.close())
  return { shipper, reports }
}

const line = (n: number, pad = 0): string => JSON.stringify({ level: 30, time: 1700000000000 + n, n, msg: `line ${n}`, pad: 'x'.repeat(pad) })
const lines = (count: number, pad = 0): string[] => Array.from({ length: count }, (_, n) => line(n, pad))
const numbers = (records: string[]): number[] => records.map((r) => (JSON.parse(r) as { n: number }).n)

t.test('lines arrive in order, each exactly once, one record each, in signed PutRecordBatch calls', async (t) => {
  const peer = await firehosePeer(t)
  const { shipper, reports } = ship(t, peer)
  const sent = lines(2500)
  for (const l of sent) shipper.push(l)
  shipper.push('')
  await shipper.flush()
  t.same(peer.delivered, sent, 'every line once, in order (an empty line is no record)')
  t.same(peer.invalid, [])
  t.ok(peer.calls.every((c) => c.records.length <= MAX_BATCH_RECORDS))
  t.equal(peer.calls.length, 5, 'full batches of 500')
  const call = peer.calls[0]
  t.ok(call?.records.every((r) => r.endsWith('}\n')), 'each record is the line and a newline')
  t.equal(call?.contentType, 'application/x-amz-json-1.1')
  t.match(call?.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDROSTERTEST\/\d{8}\/eu-west-1\/firehose\/aws4_request, SignedHeaders=.*x-amz-target.*, Signature=[0-9a-f]{64}$/)
  t.notMatch(call?.authorization, /not-a-real-secret/)
  t.same(shipper.stats(), { received: 2500, delivered: 2500, dropped: 0, failedAttempts: 0, queued: 0, queuedBytes: 0 })
  t.same(reports, [], 'nothing to report')
})

t.test('a lone line goes out on its own after the flush interval, without flush or close', async (t) => {
  const peer = await firehosePeer(t)
  const { shipper } = ship(t, peer, { flushInterval: 20 })
  shipper.push(line(1))
  shipper.push(line(2))
  await waitUntil(() => peer.delivered.length === 2, { what: 'the timed flush', timeout: 20_000 })
  t.same(numbers(peer.delivered), [1, 2])
  t.equal(peer.calls.length, 1, 'both in one call')
})

t.test('calls stay within 500 records and 4 MiB', async (t) => {
  const peer = await firehosePeer(t)
  const { shipper } = ship(t, peer)
  const big = lines(30, 300 * 1024)
  const small = lines(1200).map((l) => l.replace('"n":', '"small":true,"n":'))
  for (const l of [...big, ...small]) shipper.push(l)
  await shipper.flush()
  t.same(peer.invalid, [], 'the service found nothing to refuse')
  t.same(peer.delivered, [...big, ...small])
  for (const call of peer.calls) {
    t.ok(call.records.length <= MAX_BATCH_RECORDS && call.bytes <= MAX_BATCH_BYTES, `${call.records.length} records, ${call.bytes} bytes`)
  }
  t.ok(peer.calls.some((c) => c.bytes > MAX_BATCH_BYTES - 300 * 1024 - 64), 'big lines fill calls up to the byte limit')
})

t.test('a line over 1000 KiB becomes a record that fits and is still one JSON document', async (t) => {
  const peer = await firehosePeer(t)
  const { shipper } = ship(t, peer)
  const huge = JSON.stringify({ level: 50, time: 1, reqId: 'r-1', msg: 'é'.repeat(600 * 1024), body: Array.from({ length: 50_000 }, (_, i) => i), small: 'kept' })
  shipper.push(huge)
  await shipper.flush()
  t.same(peer.invalid, [])
  const record = peer.calls[0]?.records[0] as string
  t.ok(Buffer.byteLength(record) <= MAX_RECORD_BYTES)
  const entry = JSON.parse(record) as Record<string, unknown>
  t.match(entry, { level: 50, time: 1, reqId: 'r-1', small: 'kept', truncated: { bytes: Buffer.byteLength(huge) } })
  t.match(entry.body, /^\[\d+ bytes truncated\]$/)
  t.ok((entry.msg as string).startsWith('éé') && (entry.msg as string).endsWith('…'))
  t.ok(Buffer.byteLength(entry.msg as string) <= MAX_FIELD_BYTES + 3)
})

t.test('shrinking: many large fields, lines that are not JSON objects, UTF-8 boundaries', async (t) => {
  const wide: Record<string, unknown> = { level: 30, time: 2, pid: 3, hostname: 'h', reqId: 'r', msg: 'm' }
  for (let i = 0; i < 100; i++) wide[`f${i}`] = 'y'.repeat(MAX_FIELD_BYTES - 100)
  const wideLine = JSON.stringify(wide)
  t.same(JSON.parse(shrinkLine(wideLine)), { level: 30, time: 2, pid: 3, hostname: 'h', reqId: 'r', msg: 'm', truncated: { bytes: Buffer.byteLength(wideLine) } }, 'only pino\'s own fields are left')

  const text = `not json ${'ü'.repeat(MAX_RECORD_BYTES)}`
  const cut = toRecord(text)
  t.ok(cut.length <= MAX_RECORD_BYTES && cut.toString().endsWith('ü\n'), 'plain text is cut at a character boundary')
  const array = JSON.stringify(Array.from({ length: 300_000 }, (_, i) => i))
  t.equal(toRecord(array).length, MAX_RECORD_BYTES, 'a JSON array is cut like text')
  t.equal(toRecord('{"a":1}').toString(), '{"a":1}\n')

  t.equal(truncateUtf8('aé', 2), 'a', 'never half a character')
  t.equal(truncateUtf8('aé', 3), 'aé')
  t.equal(truncateUtf8('€', 1), '')
})

t.test('records Firehose fails are retried in their original order until accepted', async (t) => {
  const peer = await firehosePeer(t)
  // The first two calls fail every even line (as a throttled stream does), then all is accepted.
  peer.answer = (_call, n) => n <= 2 ? { fail: (r) => (JSON.parse(r) as { n: number }).n % 2 === 0 } : { accept: true }
  const { shipper, reports } = ship(t, peer)
  const sent = lines(100)
  for (const l of sent) shipper.push(l)
  await shipper.flush()
  const odd = sent.filter((_, i) => i % 2 === 1)
  const even = sent.filter((_, i) => i % 2 === 0)
  t.equal(peer.calls.length, 3)
  t.same(numbers(peer.calls[1]?.records ?? []), numbers(even), 'the retry holds exactly the failed records, in order')
  t.same(peer.delivered, [...odd, ...even], 'each once; the failed ones in their order')
  t.match(shipper.stats(), { delivered: 100, dropped: 0, failedAttempts: 2 })
  await shipper.close()
  t.equal(reports.reduce((n, r) => n + r.firehose.failedAttempts, 0), 2, 'both failures reported')
  t.match(reports[0], { level: 40, name: 'firehose', msg: /^firehose roster-logs: 1 failed PutRecordBatch attempt \(last: 50 of 100 records failed \(ServiceUnavailableException\)\)$/ })
  t.equal(reports.reduce((n, r) => n + r.firehose.dropped, 0), 0)
})

t.test('a whole call failing (500, 503, a cut connection) is retried with backoff', async (t) => {
  const peer = await firehosePeer(t)
  const answers = [{ status: 500, type: 'InternalFailure' }, { status: 503, type: 'ServiceUnavailableException' }, { reset: true as const }]
  peer.answer = (_call, n) => answers[n - 1] ?? { accept: true }
  const { shipper, reports } = ship(t, peer)
  const sent = lines(10)
  for (const l of sent) shipper.push(l)
  await shipper.flush()
  t.same(peer.delivered, sent)
  t.equal(peer.calls.length, 4, 'the same batch four times')
  t.ok(peer.calls.every((c) => c.records.length === 10))
  t.match(shipper.stats(), { failedAttempts: 3, dropped: 0 })
  await shipper.close()
  t.match(reports.at(-1)?.msg, /failed PutRecordBatch attempt/)
})

t.test('a call that gets no answer times out and is retried', async (t) => {
  const peer = await firehosePeer(t)
  peer.answer = (_call, n) => n === 1 ? { hang: true } : { accept: true }
  const { shipper, reports } = ship(t, peer, { requestTimeout: 200 })
  for (const l of lines(3)) shipper.push(l)
  await shipper.flush()
  t.same(numbers(peer.delivered), [0, 1, 2])
  t.equal(peer.calls.length, 2)
  t.match(reports[0]?.msg, /TimeoutError/)
})

t.test('a call Firehose refuses as invalid is dropped, not retried forever, and reported', async (t) => {
  const peer = await firehosePeer(t)
  peer.answer = (_call, n) => n === 1 ? { status: 400, type: 'InvalidArgumentException', message: 'bad record' } : { accept: true }
  const { shipper, reports } = ship(t, peer)
  for (const l of lines(3)) shipper.push(l)
  await shipper.flush()
  t.same(peer.delivered, [])
  shipper.push(line(7))
  await shipper.flush()
  t.same(numbers(peer.delivered), [7], 'later lines still go out')
  t.match(shipper.stats(), { dropped: 3, delivered: 1 })
  t.match(reports[0], { level: 50, msg: 'firehose roster-logs: 1 failed PutRecordBatch attempt (last: Firehose refused 3 records: InvalidArgumentException: bad record); 3 log lines dropped', firehose: { dropped: 3, failedAttempts: 1 } })
})

t.test('an unreachable Firehose: the buffer keeps the newest lines up to its bound, drops the oldest and says how many', async (t) => {
  const peer = await firehosePeer(t)
  await peer.stop()
  const bufferBytes = 1024 * 1024
  const { shipper, reports } = ship(t, peer, { bufferBytes, reportInterval: 30 })
  // 1 KiB records: the buffer holds 1024 of them.
  const sent = Array.from({ length: 4000 }, (_, n) => line(n, 1023 - line(n).length))
  t.ok(sent.every((l) => toRecord(l).length === 1024))
  for (const l of sent.slice(0, 2000)) shipper.push(l)
  await waitUntil(() => shipper.stats().failedAttempts >= 3, { what: 'failed attempts against the closed port', timeout: 20_000 })
  for (const l of sent.slice(2000)) shipper.push(l)
  await waitUntil(() => shipper.stats().failedAttempts >= 6, { what: 'more failed attempts', timeout: 20_000 })
  t.ok(shipper.stats().queuedBytes <= bufferBytes, 'the buffer stays within its bound')
  await peer.start()
  await shipper.flush()
  const got = numbers(peer.delivered)
  const { dropped } = shipper.stats()
  t.equal(got.length + dropped, sent.length, 'every line delivered or counted as dropped')
  t.ok(got.every((n, i) => i === 0 || n > (got[i - 1] as number)), 'in order, none twice')
  t.equal(got.at(-1), 3999, 'the newest line is kept')
  t.ok(got.length <= 1024 + MAX_BATCH_RECORDS && dropped >= 4000 - 1024 - MAX_BATCH_RECORDS, `${dropped} dropped, ${got.length} delivered`)
  await shipper.close()
  t.equal(reports.reduce((n, r) => n + r.firehose.dropped, 0), dropped, 'the reports add up to every dropped line')
  t.ok(reports.some((r) => r.level === 50 && /\d+ log lines dropped/.test(r.msg)))
  t.match(reports.find((r) => r.firehose.failedAttempts > 0)?.msg, /ECONNREFUSED/)
  t.equal(reports.at(-1)?.firehose.droppedTotal, dropped)
})

t.test('close sends what is left at once', async (t) => {
  const peer = await firehosePeer(t)
  const { shipper, reports } = ship(t, peer, { flushInterval: 3_600_000 })
  const sent = lines(10)
  for (const l of sent) shipper.push(l)
  await shipper.close()
  t.same(peer.delivered, sent)
  await shipper.close()
  t.same(reports, [], 'a second close is a no-op')
})

t.test('close gives up at its deadline against a Firehose that never answers, and counts what is lost', async (t) => {
  const peer = await firehosePeer(t)
  peer.answer = () => ({ hang: true })
  const { shipper, reports } = ship(t, peer, { closeTimeout: 200 })
  for (const l of lines(5)) shipper.push(l)
  await waitUntil(() => peer.calls.length === 1, { what: 'the call to hang', timeout: 20_000 })
  for (const l of lines(3)) shipper.push(l)
  await shipper.close()
  shipper.push(line(9))
  t.match(shipper.stats(), { received: 9, delivered: 0, dropped: 9, queued: 0 })
  t.same(peer.delivered, [])
  t.equal(reports.length, 1, 'one last report')
  t.match(reports[0], { level: 50, msg: /8 log lines dropped/, firehose: { dropped: 8, droppedTotal: 8 } })
})

t.test('close cuts a long retry backoff short, and still gives up at its deadline', async (t) => {
  const peer = await firehosePeer(t)
  peer.answer = () => ({ status: 500, type: 'InternalFailure' })
  const { shipper, reports } = ship(t, peer, { closeTimeout: 150, retryBase: 60_000, retryMax: 60_000 })
  for (const l of lines(4)) shipper.push(l)
  await waitUntil(() => shipper.stats().failedAttempts === 1, { what: 'a failure', timeout: 20_000 })
  await shipper.close()
  t.match(shipper.stats(), { dropped: 4, delivered: 0 })
  t.ok(peer.calls.length >= 2, 'close tried again without waiting out the minute')
  t.equal(reports.reduce((n, r) => n + r.firehose.dropped, 0), 4)
})

t.test('a Firehose back during close gets the rest at once', async (t) => {
  const peer = await firehosePeer(t)
  peer.answer = (_call, n) => n === 1 ? { status: 503, type: 'ServiceUnavailableException' } : { accept: true }
  const { shipper } = ship(t, peer, { retryBase: 60_000, retryMax: 60_000 })
  for (const l of lines(4)) shipper.push(l)
  await waitUntil(() => shipper.stats().failedAttempts === 1, { what: 'a failure', timeout: 20_000 })
  await shipper.close()
  t.same(numbers(peer.delivered), [0, 1, 2, 3])
})

t.test('reports are throttled: at once after a quiet spell, then once per interval with what happened', async (t) => {
  const peer = await firehosePeer(t)
  let failing = 3
  peer.answer = () => failing-- > 0 ? { status: 500, type: 'InternalFailure' } : { accept: true }
  const { shipper, reports } = ship(t, peer, { reportInterval: 50 })
  shipper.push(line(1))
  await shipper.flush()
  await waitUntil(() => reports.reduce((n, r) => n + r.firehose.failedAttempts, 0) === 3, { what: 'all three failures reported', timeout: 20_000 })
  t.equal(reports[0]?.firehose.failedAttempts, 1, 'the first at once')
  // After a quiet interval (the throttle's timer finds nothing to say and stops), the next failure starts over.
  await new Promise((resolve) => setTimeout(resolve, 120))
  const before = reports.length
  failing = 1
  shipper.push(line(2))
  await shipper.flush()
  await waitUntil(() => reports.length === before + 1, { what: 'the next report', timeout: 20_000 })
  t.equal(reports.at(-1)?.firehose.failedAttempts, 1)
})

t.test('configuration: region, endpoint, buffer bound; the legacy key pair only when both halves are given', async (t) => {
  const base = { FIREHOSE_DELIVERY_STREAM: 'logs', AWS_REGION: 'eu-central-1', FIREHOSE_ENDPOINT: 'http://127.0.0.1:1', FIREHOSE_BUFFER_BYTES: '2000000' }
  const c = loadConfig({ ...base, AWS_KEY: 'AKID1', AWS_SECRET: 'shh' }, '/dev/null')
  t.same(firehoseOptions({ ...c, FIREHOSE_DELIVERY_STREAM: 'logs' }), {
    deliveryStream: 'logs', region: 'eu-central-1', endpoint: 'http://127.0.0.1:1', credentials: { accessKeyId: 'AKID1', secretAccessKey: 'shh' }, bufferBytes: 2000000
  })
  const half = loadConfig({ ...base, AWS_KEY: 'AKID1' }, '/dev/null')
  t.equal(firehoseOptions({ ...half, FIREHOSE_DELIVERY_STREAM: 'logs' }).credentials, undefined, 'else the SDK default chain')
  t.equal(loadConfig({}, '/dev/null').FIREHOSE_BUFFER_BYTES, 16 * 1024 * 1024)
  t.throws(() => loadConfig({ FIREHOSE_BUFFER_BYTES: '1000' }, '/dev/null'), /FIREHOSE_BUFFER_BYTES: must be >= 1048576/)
})

t.test('without the legacy pair, credentials come from the SDK default chain', async (t) => {
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY }
  process.env.AWS_ACCESS_KEY_ID = 'AKIDFROMENVIRONMENT'
  process.env.AWS_SECRET_ACCESS_KEY = 'env-secret'
  t.teardown(() => {
    for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
      if (v === undefined) Reflect.deleteProperty(process.env, k)
      else process.env[k] = v
    }
  })
  const peer = await firehosePeer(t)
  const { shipper } = ship(t, peer, { credentials: undefined })
  shipper.push(line(1))
  await shipper.flush()
  t.match(peer.calls[0]?.authorization, /Credential=AKIDFROMENVIRONMENT\//)
})
