import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import { errors, withRetryAfter } from '../src/infra/errors.ts'
import type { Config } from '../src/config.ts'

/** Registered by src/app.ts ahead of every autoloaded plugin, so that an overloaded request is shed before any work (authentication included). */
export const autoload = false

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `false` keeps a route answering while the process is overloaded (liveness,
     * metrics): shedding it would hide the overload or get the instance killed.
     */
    loadShedding?: boolean
  }
}

/**
 * Load shedding with @fastify/under-pressure: while the event loop is saturated
 * (or memory is over a limit) new requests are answered 503 problem+json with
 * Retry-After, through the single error handler, instead of queueing up and
 * timing out. Every threshold is a PRESSURE_* variable; 0 turns a check off.
 */
export default fp<{ config: Config }>(async (app, { config }) => {
  await app.register(underPressure, {
    maxEventLoopDelay: config.PRESSURE_MAX_EVENT_LOOP_DELAY,
    maxEventLoopUtilization: config.PRESSURE_MAX_EVENT_LOOP_UTILIZATION,
    eventLoopUtilizationMode: 'interval',
    maxHeapUsedBytes: config.PRESSURE_MAX_HEAP_USED,
    maxRssBytes: config.PRESSURE_MAX_RSS,
    sampleInterval: config.PRESSURE_SAMPLE_INTERVAL,
    // A rejected promise reaches the error handler (problem+json) like any thrown error.
    pressureHandler: async (request) => {
      if (request.routeOptions.config.loadShedding === false) return
      throw withRetryAfter(new errors.Overloaded(), config.PRESSURE_RETRY_AFTER)
    }
  })
}, { name: 'pressure', dependencies: ['security'] })
