import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'

/**
 * METRICS_PORT's listener: GET (and HEAD) /metrics and nothing else; not
 * behind the proxy, not in the API docs. `render` answers the Prometheus text.
 */
export class MetricsListener {
  private readonly server: Server

  constructor (render: () => Promise<string>, contentType: string, log: FastifyBaseLogger) {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url as string).split('?')[0]
      if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found: GET /metrics\n')
        return
      }
      render().then((body) => {
        res.writeHead(200, { 'content-type': contentType }).end(req.method === 'HEAD' ? undefined : body)
      }, /* c8 ignore next 4 -- every collector catches its own failures; kept so a future one cannot hang a scrape */ (err: unknown) => {
        log.error({ err }, 'metrics: collection failed')
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics collection failed\n')
      })
    })
    this.server.keepAliveTimeout = 72_000
  }

  /** Listens; resolves with the port. */
  async listen (port: number, host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => { this.server.off('error', reject); resolve() })
    })
    return (this.server.address() as AddressInfo).port
  }

  async close (): Promise<void> {
    if (!this.server.listening) return
    await new Promise((resolve) => { this.server.close(resolve); this.server.closeAllConnections() })
  }
}
