import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Milliseconds a keep-alive connection may sit idle during the drain
     * before the server closes it (SHUTDOWN_DELAY; src/server.ts sets 0 for
     * Ctrl-C). Clients and proxies with a shorter idle timeout close theirs first.
     */
    drainIdleGrace: number
  }
}

/** How often idle connections are looked at while the server closes. */
const REAP_EVERY = 100

/**
 * Keep-alive connections during a graceful drain, in two phases (src/server.ts).
 *
 * While `app.draining` but the listener still accepts (SHUTDOWN_DELAY after a
 * SIGTERM): requests are served as usual, readiness answers 503, and nothing is
 * closed. A proxy keeps using the connections it holds instead of opening new
 * ones, so that few connections can be waiting to be accepted when the
 * listener closes (those the kernel resets).
 *
 * Once the server closes (the listener is closed; new connections are
 * refused, which nginx retries on another instance for any request):
 * requests still arriving on open connections are served, the answer to the
 * last request received on a connection says `Connection: close` (Fastify
 * does it for requests arriving now; this plugin for those in flight, unless
 * a pipelined one follows), and a connection is closed by the server only
 * once it has been idle for `drainIdleGrace`: closing an idle connection races
 * with a client writing a request onto it, which then fails without an
 * answer. nginx's idle upstream connections time out sooner
 * (deploy/nginx.conf), so nginx closes its own, and never loses a request.
 * Node's own close of idle connections at server.close() is turned off for that.
 */
export default fp(async (app) => {
  app.decorate('drainIdleGrace', app.config.SHUTDOWN_DELAY)
  const server = app.server
  /** Requests in flight per open connection, and since when one without any has been idle. */
  const connections = new Map<Socket, { busy: number, idleSince: number }>()
  server.on('connection', (socket: Socket) => {
    connections.set(socket, { busy: 0, idleSince: Date.now() })
    socket.once('close', () => { connections.delete(socket) })
  })
  server.on('request', (req, res) => {
    // Every request comes on a connection the server accepted ('connection' came first).
    const state = connections.get(req.socket) as { busy: number, idleSince: number }
    state.busy++
    res.once('close', () => {
      state.busy--
      state.idleSince = Date.now()
    })
  })

  let closing = false
  let reaper: NodeJS.Timeout | undefined
  const closeIdle = server.closeIdleConnections.bind(server)
  const reap = (): void => {
    const now = Date.now()
    for (const [socket, state] of connections) {
      if (state.busy === 0 && now - state.idleSince >= app.drainIdleGrace) socket.destroy()
    }
  }
  app.addHook('preClose', async () => {
    closing = true
    // server.close() would close every idle connection at once: reap() closes them once idle long enough.
    server.closeIdleConnections = () => {}
    reap()
    reaper = setInterval(reap, REAP_EVERY)
    server.once('close', () => { clearInterval(reaper) })
  })
  app.addHook('onClose', async () => {
    clearInterval(reaper)
    server.closeIdleConnections = closeIdle
  })

  // The last request received on each connection: its answer is the one to say `Connection: close`.
  const last = new WeakMap<Socket, FastifyRequest>()
  app.addHook('onRequest', async (request) => { last.set(request.raw.socket, request) })
  app.addHook('onSend', async (request, reply) => {
    if (closing && last.get(request.raw.socket) === request) reply.header('connection', 'close')
  })
}, { name: 'drain', dependencies: ['config'] })
