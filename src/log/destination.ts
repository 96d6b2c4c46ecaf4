import { fileURLToPath } from 'node:url'
import pino, { type DestinationStream } from 'pino'
import type { Config } from '../config.ts'
import type { FirehoseTransportOptions } from './firehose-transport.ts'

/**
 * The Firehose transport's worker: from dist/ the compiled module, run as is;
 * from sources a shim that loads the TypeScript module, in a worker given the
 * TypeScript loader this process runs under (pino would not pass it on).
 */
export function firehoseWorker (moduleUrl = import.meta.url): { target: string, worker: { execArgv?: string[] } } {
  const fromSources = moduleUrl.endsWith('.ts')
  return {
    target: fileURLToPath(new URL(fromSources ? './firehose-transport.mjs' : './firehose-transport.js', moduleUrl)),
    worker: fromSources ? { execArgv: process.execArgv } : {}
  }
}

/** The transport's options from the configuration (credentials stay in memory: worker data, never logged). */
export function firehoseOptions (config: Config & { FIREHOSE_DELIVERY_STREAM: string }): FirehoseTransportOptions {
  return {
    deliveryStream: config.FIREHOSE_DELIVERY_STREAM,
    region: config.AWS_REGION,
    endpoint: config.FIREHOSE_ENDPOINT,
    // The legacy pair when both are given; otherwise the SDK's default chain (env, profile, container or instance role).
    credentials: config.AWS_KEY !== undefined && config.AWS_SECRET !== undefined
      ? { accessKeyId: config.AWS_KEY, secretAccessKey: config.AWS_SECRET }
      : undefined,
    bufferBytes: config.FIREHOSE_BUFFER_BYTES
  }
}

/**
 * Where the logger writes. Without FIREHOSE_DELIVERY_STREAM: `stdout` as given
 * (undefined = pino's own stdout). With it: every line to stdout AND to the
 * Firehose transport in its worker thread. Redaction happens before either.
 */
export function logStream (config: Config, stdout?: DestinationStream): DestinationStream | undefined {
  if (config.FIREHOSE_DELIVERY_STREAM === undefined) return stdout
  const out = stdout ?? pino.destination(1)
  const transport = pino.transport<FirehoseTransportOptions>({
    ...firehoseWorker(),
    options: firehoseOptions({ ...config, FIREHOSE_DELIVERY_STREAM: config.FIREHOSE_DELIVERY_STREAM })
  })
  let failed = false
  transport.on('error', (err: Error) => {
    // A dead worker must not take the service down: say so once, keep logging to stdout.
    if (failed) return
    failed = true
    out.write(`${JSON.stringify({ level: 50, time: Date.now(), pid: process.pid, name: 'firehose', msg: `firehose transport stopped, logs go to stdout only: ${err.message}` })}\n`)
  })
  return pino.multistream([{ level: 'trace', stream: out }, { level: 'trace', stream: transport }])
}
