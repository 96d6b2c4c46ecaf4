import type { Database } from './database.ts'

/**
 * One request counted against `key` ($1) in one statement: the window starts
 * over when it has ended ($2: its length in ms), else the count goes up.
 * Answers the count and the milliseconds left in the window.
 */
const HIT = {
  name: 'rate_limit_hit',
  text: `INSERT INTO rate_limit_hits AS r (key, hits, reset_at) VALUES ($1, 1, now() + $2::float8 * interval '1 millisecond')
    ON CONFLICT (key) DO UPDATE SET
      hits = CASE WHEN r.reset_at <= now() THEN 1 ELSE r.hits + 1 END,
      reset_at = CASE WHEN r.reset_at <= now() THEN EXCLUDED.reset_at ELSE r.reset_at END
    RETURNING r.hits AS current, greatest(0, ceil(extract(epoch FROM r.reset_at - now()) * 1000))::int AS ttl`
}

type Callback = (err: Error | null, result?: { current: number, ttl: number }) => void

/**
 * What @fastify/rate-limit passes to a store's constructor and `child`: the
 * merged options of one limiter, our `scope` among them (its types say route
 * options; at run time they are these).
 */
export interface LimiterOptions { scope?: string }

/**
 * A store for @fastify/rate-limit that counts in PostgreSQL (table
 * rate_limit_hits, UNLOGGED), so that every instance on the database shares
 * one count per client: N instances allow the limit once, not N times. One
 * UPSERT per counted request, fixed windows as the plugin's own memory store
 * has. Each limiter (`app.rateLimit({ scope, ... })`) counts apart: its
 * `scope` prefixes the client's key. The pruning job deletes ended windows.
 */
export function postgresRateLimitStore (db: Database) {
  return class PostgresRateLimitStore {
    private readonly scope: string

    constructor (options: object) {
      this.scope = (options as LimiterOptions).scope ?? '*'
    }

    incr (key: string, callback: Callback, timeWindow: number): void {
      db.query<{ current: number, ttl: number }>({ ...HIT, values: [`${this.scope} ${key}`, timeWindow] })
        .then(({ rows }) => { callback(null, rows[0]) }, (err: Error) => { callback(err) })
    }

    child (options: object): PostgresRateLimitStore {
      return new PostgresRateLimitStore(options)
    }
  }
}
