// First: node-postgres loaded before anything else imports it (see there).
import './infra/pg-import.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import closeWithGrace from 'close-with-grace'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { configOrExit, publicUrl } from './config.ts'
import { serverOptions } from './server-options.ts'
import app from './app.ts'
import { leaveSignalsToServer } from '../db/embedded.ts'

/** The process: validate config, build, listen, drain on SIGTERM/SIGINT. */
async function main (): Promise<void> {
  // Every configuration problem, the server's included (production's secrets, keys, REGISTRATION), at once, before anything starts.
  const config = configOrExit({ server: true })
  leaveSignalsToServer()
  const server = Fastify(serverOptions(config)).withTypeProvider<TypeBoxTypeProvider>()

  // close-with-grace itself logs an uncaught error that triggers the shutdown.
  closeWithGrace({ delay: config.SHUTDOWN_DELAY + config.SHUTDOWN_TIMEOUT, logger: server.log }, async ({ signal }) => {
    server.log.info({ signal }, 'shutting down')
    server.draining = true
    // The pre-stop delay: readiness answers 503 while everything is still served, so that
    // balancers move away before a connection is refused (plugins/drain.ts). Orchestrators
    // stop with SIGTERM; Ctrl-C skips it, and closes idle keep-alive connections at once.
    if (signal === 'SIGTERM' && config.SHUTDOWN_DELAY > 0) {
      server.log.info({ delay: config.SHUTDOWN_DELAY }, 'readiness says 503, still serving: the listener closes after SHUTDOWN_DELAY')
      await sleep(config.SHUTDOWN_DELAY)
    } else {
      server.drainIdleGrace = 0
    }
    // Stops accepting, lets every request in flight finish, then runs the onClose hooks: metrics
    // listener, mail dispatcher, pool, embedded PostgreSQL. Bounded by SHUTDOWN_TIMEOUT (then exit 1).
    await server.close()
    server.log.info('drained: every request answered, every resource closed')
  })

  await server.register(app, { config })
  await server.listen({ host: config.HOST, port: config.PORT })
  server.log.info(`Roster is up: API docs at ${publicUrl(config)}/apidocs`)
}

main().catch((err: unknown) => {
  process.stderr.write(`roster: failed to start: ${(err as Error).message}\n`)
  process.exit(1)
})
