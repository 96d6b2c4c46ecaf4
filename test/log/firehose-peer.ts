/**
 * A local Amazon Data Firehose for the log-shipping tests: an HTTP server on
 * 127.0.0.1 that speaks the service's JSON protocol (awsJson1_1) for
 * PutRecordBatch. It decodes what the real SDK sends, checks it as the
 * service does (operation, signature present, stream name, 1-500 records,
 * records <= 1000 KiB, call <= 4 MiB) and answers like the service: a
 * per-record result list, partial failures, or an error for the whole call.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { freePort } from '../../db/embedded.ts'
import type { TestContext } from '../helper.ts'

export const STREAM = 'roster-logs'

export interface PutCall {
  stream: string
  /** Decoded records, each as sent (with its newline). */
  records: string[]
  /** Decoded bytes of all records. */
  bytes: number
  authorization: string
  target: string
  contentType: string
}

/**
 * How to answer one call: accept it, fail the records `fail` picks (the others
 * are accepted), fail the whole call with an HTTP status and error type, never
 * answer, or cut the connection.
 */
export type Answer =
  | { accept: true }
  | { fail: (record: string, index: number) => boolean, code?: string }
  | { status: number, type: string, message?: string }
  | { hang: true }
  | { reset: true }

export interface FirehosePeer {
  readonly port: number
  readonly url: string
  /** Every well-formed call, in arrival order. */
  readonly calls: PutCall[]
  /** Records accepted, in the order accepted (newline stripped). */
  readonly delivered: string[]
  /** Calls refused because they broke the protocol or the service's limits. */
  readonly invalid: string[]
  /** Decides the answer to each well-formed call; default: accept. */
  answer: (call: PutCall, n: number) => Answer
  start: () => Promise<void>
  /** Stops listening and cuts open connections: the endpoint becomes unreachable. */
  stop: () => Promise<void>
}

const ACCEPT: Answer = { accept: true }
const MAX_RECORDS = 500
const MAX_RECORD_BYTES = 1000 * 1024
const MAX_CALL_BYTES = 4 * 1024 * 1024

function reply (res: ServerResponse, status: number, body: unknown, errorType?: string): void {
  const json = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(json),
    'x-amzn-requestid': crypto.randomUUID(),
    ...(errorType !== undefined && { 'x-amzn-errortype': errorType })
  })
  res.end(json)
}

function error (res: ServerResponse, status: number, type: string, message: string): void {
  reply(res, status, { __type: type, message }, type)
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString()
}

/** A local Firehose on 127.0.0.1, started, stopped when the test ends. */
export async function firehosePeer (t: TestContext, stream = STREAM): Promise<FirehosePeer> {
  const port = await freePort()
  const calls: PutCall[] = []
  const delivered: string[] = []
  const invalid: string[] = []

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req)
    const target = String(req.headers['x-amz-target'])
    if (req.method !== 'POST' || req.url !== '/' || target !== 'Firehose_20150804.PutRecordBatch') {
      invalid.push(`unknown operation ${req.method as string} ${req.url as string} ${target}`)
      return error(res, 400, 'UnknownOperationException', 'Unknown operation')
    }
    const authorization = String(req.headers.authorization)
    if (!authorization.startsWith('AWS4-HMAC-SHA256 Credential=')) {
      invalid.push('unsigned')
      return error(res, 400, 'MissingAuthenticationTokenException', 'Missing Authentication Token')
    }
    let input: { DeliveryStreamName?: unknown, Records?: Array<{ Data?: unknown }> }
    try {
      input = JSON.parse(body)
    } catch {
      invalid.push('body is not JSON')
      return error(res, 400, 'SerializationException', 'Start of structure or map found where not expected')
    }
    if (input.DeliveryStreamName !== stream) {
      invalid.push(`unknown stream ${String(input.DeliveryStreamName)}`)
      return error(res, 400, 'ResourceNotFoundException', `Firehose ${String(input.DeliveryStreamName)} not found.`)
    }
    const records = Array.isArray(input.Records) ? input.Records.map((r) => typeof r.Data === 'string' ? Buffer.from(r.Data, 'base64') : undefined) : []
    const bytes = records.reduce((n, r) => n + (r?.length ?? 0), 0)
    const problem = records.length < 1 || records.length > MAX_RECORDS
      ? `${records.length} records`
      : records.some((r) => r === undefined || r.length === 0 || r.length > MAX_RECORD_BYTES)
        ? 'a record is empty or over 1000 KiB'
        : bytes > MAX_CALL_BYTES ? `${bytes} bytes in one call` : undefined
    if (problem !== undefined) {
      invalid.push(problem)
      return error(res, 400, 'InvalidArgumentException', problem)
    }
    const call: PutCall = {
      stream,
      records: records.map((r) => (r as Buffer).toString()),
      bytes,
      authorization,
      target,
      contentType: String(req.headers['content-type'])
    }
    calls.push(call)
    const answer = peer.answer(call, calls.length)
    if ('hang' in answer) return
    if ('reset' in answer) {
      req.socket.destroy()
      return
    }
    if ('status' in answer) return error(res, answer.status, answer.type, answer.message ?? answer.type)
    const fail = 'fail' in answer ? answer.fail : () => false
    const code = 'fail' in answer && answer.code !== undefined ? answer.code : 'ServiceUnavailableException'
    const results = call.records.map((record, i) => {
      if (fail(record, i)) return { ErrorCode: code, ErrorMessage: 'Slow down.' }
      delivered.push(record.replace(/\n$/, ''))
      return { RecordId: crypto.randomUUID() }
    })
    reply(res, 200, { FailedPutCount: results.filter((r) => 'ErrorCode' in r).length, Encrypted: false, RequestResponses: results })
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => { error(res, 500, 'InternalFailure', String(err)) })
  })
  server.keepAliveTimeout = 1000

  const peer: FirehosePeer = {
    port,
    url: `http://127.0.0.1:${port}`,
    calls,
    delivered,
    invalid,
    answer: () => ACCEPT,
    async start () {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject)
          resolve()
        })
      })
    },
    async stop () {
      if (!server.listening) return
      const closed = new Promise((resolve) => server.close(resolve))
      server.closeAllConnections()
      await closed
    }
  }
  await peer.start()
  t.after(() => peer.stop())
  return peer
}
