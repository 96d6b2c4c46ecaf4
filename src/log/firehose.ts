import { hostname } from 'node:os'
import { FirehoseClient, PutRecordBatchCommand } from '@aws-sdk/client-firehose'

/** Amazon Data Firehose's PutRecordBatch limits (record sizes are before base64). */
export const MAX_BATCH_RECORDS = 500
export const MAX_BATCH_BYTES = 4 * 1024 * 1024
export const MAX_RECORD_BYTES = 1000 * 1024
/** An oversize line keeps each of its fields up to this many bytes. */
export const MAX_FIELD_BYTES = 16 * 1024

export interface ShipperOptions {
  deliveryStream: string
  region: string
  /** Endpoint override (a local Firehose in tests). */
  endpoint?: string
  /** Static credentials (AWS_KEY/AWS_SECRET); otherwise the SDK's default chain. */
  credentials?: { accessKeyId: string, secretAccessKey: string }
  /** Most bytes of log lines held waiting to be sent; beyond it the oldest are dropped. */
  bufferBytes: number
  /** Milliseconds a line may wait for its batch to fill before it is sent anyway. */
  flushInterval?: number
  /** First retry delay in milliseconds; doubles per consecutive failure up to retryMax (equal jitter). */
  retryBase?: number
  retryMax?: number
  /** Milliseconds one PutRecordBatch may take. */
  requestTimeout?: number
  /** Milliseconds close() keeps trying before it drops what is left. */
  closeTimeout?: number
  /** Failures and drops are reported at once, then at most once per this many milliseconds. */
  reportInterval?: number
  /** Where reports go, one JSON line each (the transport writes them to stdout, never to Firehose). */
  report: (line: string) => void
}

export interface ShipperStats {
  /** Lines accepted by push(). */
  received: number
  /** Records Firehose accepted. */
  delivered: number
  /** Lines given up: oldest-first under a full buffer, refused by Firehose, or still unsent at the close deadline. */
  dropped: number
  /** PutRecordBatch calls that failed in whole or in part. */
  failedAttempts: number
  /** Lines waiting (not counting a batch in flight). */
  queued: number
  queuedBytes: number
}

interface Entry { data: Buffer, at: number }

/** FIFO of records with O(1) shift and a cheap prepend for the (rare) retries. */
class RecordQueue {
  private items: Array<Entry | undefined> = []
  private head = 0
  bytes = 0

  get length (): number { return this.items.length - this.head }

  peek (): Entry | undefined { return this.items[this.head] }

  push (entry: Entry): void {
    this.items.push(entry)
    this.bytes += entry.data.length
  }

  /** Takes the oldest entry; only called when there is one. */
  shift (): Entry {
    const entry = this.items[this.head] as Entry
    this.items[this.head++] = undefined
    this.bytes -= entry.data.length
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return entry
  }

  /** Puts entries back in front, in their order. */
  prepend (entries: Entry[]): void {
    this.items = [...entries, ...this.items.slice(this.head)]
    this.head = 0
    for (const e of entries) this.bytes += e.data.length
  }

  clear (): number {
    const n = this.length
    this.items = []
    this.head = 0
    this.bytes = 0
    return n
  }
}

/** Cuts a string to at most `bytes` bytes of UTF-8 without splitting a character. */
export function truncateUtf8 (s: string, bytes: number): string {
  const buf = Buffer.from(s)
  if (buf.length <= bytes) return s
  let end = bytes
  while (end > 0 && ((buf[end] as number) & 0xc0) === 0x80) end--
  return buf.subarray(0, end).toString()
}

/**
 * A line too large for one Firehose record, made to fit and still be one JSON
 * document: every field longer than MAX_FIELD_BYTES is cut (strings keep their
 * start, other values become a note of their size), and `truncated` gives the
 * original size. A line with very many fields keeps pino's own fields only.
 */
export function shrinkLine (line: string): string {
  const bytes = Buffer.byteLength(line)
  let entry: unknown
  try {
    entry = JSON.parse(line)
  } catch {}
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return truncateUtf8(line, MAX_RECORD_BYTES - 1)
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(entry)) {
    const size = Buffer.byteLength(JSON.stringify(value))
    if (size <= MAX_FIELD_BYTES) out[key] = value
    else out[key] = typeof value === 'string' ? `${truncateUtf8(value, MAX_FIELD_BYTES)}…` : `[${size} bytes truncated]`
  }
  out.truncated = { bytes }
  const shrunk = JSON.stringify(out)
  if (Buffer.byteLength(shrunk) < MAX_RECORD_BYTES) return shrunk
  const { level, time, pid, hostname, reqId, msg } = out
  return JSON.stringify({ level, time, pid, hostname, reqId, msg, truncated: { bytes } })
}

/** One log line as one Firehose record: the line and a newline, at most MAX_RECORD_BYTES. */
export function toRecord (line: string): Buffer {
  const data = Buffer.from(`${line}\n`)
  return data.length <= MAX_RECORD_BYTES ? data : Buffer.from(`${shrinkLine(line)}\n`)
}

/** Longest retry delay while closing, so that several attempts fit before the close deadline. */
const CLOSE_RETRY_MAX = 500

/** Errors after which sending the same batch again cannot succeed. */
const PERMANENT = new Set(['InvalidArgumentException', 'ValidationException', 'SerializationException'])

function describe (err: Error): string {
  return `${err.name}: ${err.message}`
}

/**
 * Ships log lines to Amazon Data Firehose with PutRecordBatch: one call in
 * flight at a time, so records leave in the order they came; batches of at
 * most 500 records / 4 MiB, sent when full or when their oldest line has
 * waited `flushInterval`. Records Firehose failed (the whole call, or some of
 * its records) go back to the front of the queue in their original order and
 * are retried with exponential backoff. The queue is bounded by `bufferBytes`;
 * past it the oldest lines are dropped, and the count is reported (to stdout,
 * not through Firehose).
 */
export class FirehoseShipper {
  private readonly client: FirehoseClient
  private readonly queue = new RecordQueue()
  private readonly opts: Required<Omit<ShipperOptions, 'endpoint' | 'credentials'>>
  private inFlight: Entry[] | undefined
  private abort: AbortController | undefined
  private flushTimer: NodeJS.Timeout | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private reportTimer: NodeJS.Timeout | undefined
  private closeTimer: NodeJS.Timeout | undefined
  private failures = 0
  private urgent = 0
  private closing: Promise<void> | undefined
  private abandoned = false
  private idleWaiters: Array<() => void> = []
  private readonly counts = { received: 0, delivered: 0, dropped: 0, failedAttempts: 0 }
  /** What happened since the last report. */
  private pending = { dropped: 0, failedAttempts: 0, lastError: '' }

  constructor (options: ShipperOptions) {
    this.opts = {
      flushInterval: 1000,
      retryBase: 100,
      retryMax: 10_000,
      requestTimeout: 10_000,
      closeTimeout: 5000,
      reportInterval: 10_000,
      ...options
    }
    this.client = new FirehoseClient({
      region: options.region,
      endpoint: options.endpoint,
      credentials: options.credentials,
      // Retries are ours (ordered, bounded by the buffer); the SDK makes one attempt per call.
      maxAttempts: 1,
      requestHandler: { connectionTimeout: Math.min(3000, this.opts.requestTimeout), requestTimeout: this.opts.requestTimeout, throwOnRequestTimeout: true }
    })
  }

  stats (): ShipperStats {
    return { ...this.counts, queued: this.queue.length, queuedBytes: this.queue.bytes }
  }

  /** Queues one log line (without its newline). Never blocks, never throws. */
  push (line: string): void {
    if (line === '') return
    this.counts.received++
    if (this.abandoned) {
      this.drop(1)
      return
    }
    this.queue.push({ data: toRecord(line), at: Date.now() })
    this.enforceBound()
    this.pump()
  }

  /** Sends everything queued now; resolves when nothing is left waiting or in flight. */
  async flush (): Promise<void> {
    this.urgent++
    try {
      this.pump()
      await this.idle()
    } finally {
      this.urgent--
    }
  }

  /**
   * Sends what is left and stops. After `closeTimeout` it gives up: the call in
   * flight is aborted and what is unsent counts as dropped. Reports last.
   */
  async close (): Promise<void> {
    this.closing ??= (async () => {
      this.urgent++
      this.closeTimer = setTimeout(() => { this.abandon() }, this.opts.closeTimeout)
      // No waiting out a long backoff now: try at once, then retry at least every CLOSE_RETRY_MAX.
      clearTimeout(this.retryTimer)
      this.retryTimer = undefined
      this.pump()
      await this.idle()
      clearTimeout(this.closeTimer)
      clearTimeout(this.flushTimer)
      clearTimeout(this.retryTimer)
      clearTimeout(this.reportTimer)
      this.reportTimer = undefined
      this.writeReport()
      this.client.destroy()
    })()
    return await this.closing
  }

  private abandon (): void {
    this.abandoned = true
    clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    this.drop(this.queue.clear())
    this.abort?.abort()
    this.settle()
  }

  private async idle (): Promise<void> {
    if (this.inFlight === undefined && this.queue.length === 0) return
    await new Promise<void>((resolve) => { this.idleWaiters.push(resolve) })
  }

  private settle (): void {
    if (this.inFlight !== undefined || this.queue.length > 0) return
    for (const resolve of this.idleWaiters.splice(0)) resolve()
  }

  private enforceBound (): void {
    let n = 0
    for (; this.queue.bytes > this.opts.bufferBytes; n++) this.queue.shift()
    if (n > 0) this.drop(n)
  }

  private drop (n: number): void {
    this.counts.dropped += n
    this.pending.dropped += n
    this.note()
  }

  /** Starts a call when one is due: a full batch, an urgent flush, or a line that waited flushInterval. */
  private pump (): void {
    if (this.inFlight !== undefined || this.retryTimer !== undefined || this.abandoned) return
    const oldest = this.queue.peek()
    if (oldest === undefined) return
    const full = this.queue.length >= MAX_BATCH_RECORDS || this.queue.bytes >= MAX_BATCH_BYTES
    const wait = this.urgent > 0 || full ? 0 : oldest.at + this.opts.flushInterval - Date.now()
    if (wait <= 0) {
      clearTimeout(this.flushTimer)
      this.flushTimer = undefined
      this.send()
    } else {
      this.flushTimer ??= setTimeout(() => {
        this.flushTimer = undefined
        this.pump()
      }, wait)
    }
  }

  private takeBatch (): Entry[] {
    const batch: Entry[] = []
    let bytes = 0
    for (let e = this.queue.peek(); e !== undefined && batch.length < MAX_BATCH_RECORDS && bytes + e.data.length <= MAX_BATCH_BYTES; e = this.queue.peek()) {
      batch.push(this.queue.shift())
      bytes += e.data.length
    }
    return batch
  }

  private async send (): Promise<void> {
    const batch = this.takeBatch()
    this.inFlight = batch
    this.abort = new AbortController()
    let retry = false
    try {
      const out = await this.client.send(new PutRecordBatchCommand({
        DeliveryStreamName: this.opts.deliveryStream,
        Records: batch.map((e) => ({ Data: e.data }))
      }), { abortSignal: this.abort.signal })
      // RequestResponses[i] answers Records[i]: a RecordId, or an ErrorCode for a record to retry.
      const errors = batch.map((_, i) => out.RequestResponses?.[i]?.ErrorCode)
      const failed = batch.filter((_, i) => errors[i] !== undefined)
      this.counts.delivered += batch.length - failed.length
      if (failed.length > 0) {
        this.failed(`${failed.length} of ${batch.length} records failed (${errors.find((e) => e !== undefined) as string})`)
        this.requeue(failed)
        retry = true
      } else {
        this.failures = 0
      }
    } catch (err) {
      if (this.abandoned) {
        this.drop(batch.length)
      } else if (PERMANENT.has((err as Error).name)) {
        this.failed(`Firehose refused ${batch.length} records: ${describe(err as Error)}`, false)
        this.drop(batch.length)
      } else {
        this.failed(describe(err as Error))
        this.requeue(batch)
        retry = true
      }
    } finally {
      this.inFlight = undefined
      this.abort = undefined
    }
    if (retry && !this.abandoned) {
      const max = this.closing === undefined ? this.opts.retryMax : Math.min(this.opts.retryMax, CLOSE_RETRY_MAX)
      const delay = Math.min(max, this.opts.retryBase * 2 ** (this.failures - 1))
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined
        this.pump()
      }, delay / 2 + Math.random() * delay / 2)
    }
    this.pump()
    this.settle()
  }

  private requeue (entries: Entry[]): void {
    this.queue.prepend(entries)
    this.enforceBound()
  }

  private failed (error: string, notify = true): void {
    this.failures++
    this.counts.failedAttempts++
    this.pending.failedAttempts++
    this.pending.lastError = error
    if (notify) this.note()
  }

  /** Reports at once after a quiet spell, then at most once per reportInterval. */
  private note (): void {
    if (this.reportTimer !== undefined || this.closing !== undefined) return
    this.writeReport()
    const tick = (): void => {
      if (this.pending.dropped === 0 && this.pending.failedAttempts === 0) {
        this.reportTimer = undefined
        return
      }
      this.writeReport()
      this.reportTimer = setTimeout(tick, this.opts.reportInterval).unref()
    }
    // Unref'd: a report due later never holds the process open (close() writes the last one).
    this.reportTimer = setTimeout(tick, this.opts.reportInterval).unref()
  }

  private writeReport (): void {
    const { dropped, failedAttempts, lastError } = this.pending
    if (dropped === 0 && failedAttempts === 0) return
    this.pending = { dropped: 0, failedAttempts: 0, lastError: '' }
    const parts = []
    if (failedAttempts > 0) parts.push(`${failedAttempts} failed PutRecordBatch attempt${failedAttempts === 1 ? '' : 's'} (last: ${lastError})`)
    if (dropped > 0) parts.push(`${dropped} log line${dropped === 1 ? '' : 's'} dropped`)
    const line = {
      level: dropped > 0 ? 50 : 40,
      time: Date.now(),
      pid: process.pid,
      hostname: hostname(),
      name: 'firehose',
      msg: `firehose ${this.opts.deliveryStream}: ${parts.join('; ')}`,
      firehose: { failedAttempts, dropped, droppedTotal: this.counts.dropped, queued: this.queue.length, queuedBytes: this.queue.bytes }
    }
    this.opts.report(`${JSON.stringify(line)}\n`)
  }
}
