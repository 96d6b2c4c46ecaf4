/**
 * The pino transport that ships log lines to Amazon Data Firehose. pino runs
 * it in a worker thread (`pino.transport({ target })`): the main thread only
 * copies each line into the thread's shared buffer, so a slow or unreachable
 * Firehose never slows a request.
 */
import build from 'pino-abstract-transport'
import { writeSync } from 'node:fs'
import { FirehoseShipper, type ShipperOptions } from './firehose.ts'

export interface FirehoseTransportOptions extends Omit<ShipperOptions, 'report'> {
  /** File descriptor receiving the transport's own reports (drops, failures). Default 1, stdout. */
  reportFd?: number
}

export default function firehoseTransport (options: FirehoseTransportOptions) {
  const { reportFd = 1, ...shipperOptions } = options
  const shipper = new FirehoseShipper({
    ...shipperOptions,
    report: (line) => {
      try {
        writeSync(reportFd, line)
      } catch {
        // stdout closed or full (EPIPE, EAGAIN): this report is lost; thrown, it would end the worker and the shipping.
      }
    }
  })
  const stream = build((source) => {
    source.on('data', (line: string) => { shipper.push(line) })
  }, {
    parse: 'lines',
    // Lines are shipped as written: no parsing, so nothing is lost to a line that is not JSON.
    parseLine: (line) => line,
    metadata: false,
    // Runs when pino ends the stream (at process exit): send what is left, then report.
    close: async () => { await shipper.close() }
  })
  // thread-stream's flush(cb) calls this in the worker.
  return Object.assign(stream, { flush: async () => { await shipper.flush() }, shipper })
}
