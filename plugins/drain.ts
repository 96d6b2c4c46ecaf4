import type { Socket } from 'node:net'
import fp from 'fastify-plugin'

/**
 * Keep-alive connections during a graceful drain (`app.draining`, set by
 * src/server.ts on SIGTERM). The server's close() stops accepting and closes
 * idle connections, then waits for every connection to end; a keep-alive
 * client would hold it up until its idle timeout. So, while draining, each
 * answer says `Connection: close` (the client reconnects to an instance that
 * is not leaving), unless another request already waits on the same connection
 * (pipelined: the last answer says it), and connections left idle after an
 * answer are closed.
 */
export default fp(async (app) => {
  const inFlight = new WeakMap<Socket, number>()
  app.addHook('onRequest', async (request) => {
    const socket = request.raw.socket
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1)
  })
  app.addHook('onSend', async (request, reply) => {
    if (app.draining && inFlight.get(request.raw.socket) === 1) reply.header('connection', 'close')
  })
  app.addHook('onResponse', async (request) => {
    const socket = request.raw.socket
    inFlight.set(socket, (inFlight.get(socket) as number) - 1)
    if (app.draining) setImmediate(() => { app.server.closeIdleConnections() })
  })
}, { name: 'drain' })
