import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { build, createAdmin, loginAs, type TestAdmin, type TestApp, type TestContext, type TestSession } from '../helper.ts'

/** What the receiver does with the next request. */
export type Behaviour = 'ok' | 'fail' | 'hang' | 'slow-body'

export interface Received {
  headers: IncomingHttpHeaders
  body: string
  /** The status the receiver answered (null: it hung). */
  answered: number | null
}

/**
 * A real webhook receiver on 127.0.0.1: answers 204, 500, or never (hangs),
 * as `plan` says for each request in turn (then `otherwise`); records every request.
 */
export class Receiver {
  readonly received: Received[] = []
  plan: Behaviour[] = []
  otherwise: Behaviour = 'ok'
  private readonly server: Server
  private readonly hanging = new Set<ServerResponse>()

  constructor () {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const behaviour = this.plan.shift() ?? this.otherwise
        const entry: Received = { headers: req.headers, body: Buffer.concat(chunks).toString(), answered: null }
        this.received.push(entry)
        if (behaviour === 'hang') { this.hanging.add(res); return }
        if (behaviour === 'slow-body') {
          // Headers at once, the body never ends: the sender must cut it off too.
          res.writeHead(200, { 'content-type': 'text/plain' })
          res.write('partial')
          this.hanging.add(res)
          return
        }
        entry.answered = behaviour === 'ok' ? 204 : 500
        res.writeHead(entry.answered, { 'content-type': 'text/plain' }).end(behaviour === 'ok' ? '' : 'receiver broken')
      })
    })
  }

  async listen (): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`
  }

  /** Messages the receiver acknowledged with a 2xx, by webhook-id. */
  accepted (): Received[] {
    return this.received.filter((r) => r.answered !== null && r.answered < 300)
  }

  async close (): Promise<void> {
    for (const res of this.hanging) res.destroy()
    this.server.closeAllConnections()
    await new Promise((resolve) => this.server.close(resolve))
  }
}

export interface WebhooksFixture {
  app: TestApp
  owner: TestAdmin
  session: TestSession
  receiver: Receiver
  url: string
  /** POST /webhooks as the owner, expecting 201; answers the endpoint with its secret. */
  createEndpoint: (body?: Record<string, unknown>) => Promise<{ id: string, secret: string }>
}

/** Fast retries and polls so that tests wait milliseconds, not seconds. */
export const FAST_WEBHOOKS: Record<string, string> = {
  WEBHOOK_DISPATCHER: 'true',
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_RETRY_BASE: '20',
  WEBHOOK_TIMEOUT: '3000',
  WEBHOOK_POLL_INTERVAL: '25'
}

export async function webhooksFixture (t: TestContext, env: Record<string, string> = {}): Promise<WebhooksFixture> {
  const receiver = new Receiver()
  const url = await receiver.listen()
  t.after(async () => { await receiver.close() })
  const app = await build(t, { env: { ...FAST_WEBHOOKS, ...env } })
  const owner = await createAdmin(app)
  const session = await loginAs(app, owner)
  return {
    app,
    owner,
    session,
    receiver,
    url,
    async createEndpoint (body = {}) {
      const res = await app.inject({ method: 'POST', url: '/webhooks', headers: session.headers, payload: { url, events: ['user.created', 'user.updated', 'user.deleted'], ...body } })
      if (res.statusCode !== 201) throw new Error(`POST /webhooks answered ${res.statusCode}: ${res.body}`)
      return res.json<{ id: string, secret: string }>()
    }
  }
}
