import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { clientKey } from './client-key.ts'
import type { Database } from './database.ts'

/** The code of the rate limit's 429 (plugins/rate-limit.ts makes the error; problem+json answers ROSTER_RATE_LIMITED). */
export const RATE_LIMITED = 'FST_ERR_RATE_LIMIT'

/** One request counted: the window's count so far, and the milliseconds left in it. */
export interface RateCount { current: number, ttl: number }

/**
 * One request counted against the key (SQL placeholder `key`, its text the
 * limiter's scope and the client's key) in one statement: the window starts
 * over when it has ended (`window`: its length in ms), else the count goes up.
 * Answers `current` and `ttl` (RateCount). Also the CTE of a statement that
 * counts its own request (StatementCount).
 */
export const hitSql = (key: string, window: string): string => `INSERT INTO rate_limit_hits AS r (key, hits, reset_at) VALUES (${key}, 1, now() + ${window}::float8 * interval '1 millisecond')
    ON CONFLICT (key) DO UPDATE SET
      hits = CASE WHEN r.reset_at <= now() THEN 1 ELSE r.hits + 1 END,
      reset_at = CASE WHEN r.reset_at <= now() THEN EXCLUDED.reset_at ELSE r.reset_at END
    RETURNING r.hits AS current, greatest(0, ceil(extract(epoch FROM r.reset_at - now()) * 1000))::int AS ttl`

const HIT = { name: 'rate_limit_hit', text: hitSql('$1', '$2') }

/** The key a limiter of `scope` counts a client's requests under. */
const storeKey = (scope: string, key: string): string => `${scope} ${key}`

type Callback = (err: Error | null, result?: RateCount) => void

/**
 * What @fastify/rate-limit passes to a store's constructor and `child`: the
 * merged options of one limiter, our `scope` among them (its types say route
 * options; at run time they are these).
 */
export interface LimiterOptions { scope?: string }

/**
 * Counts made by requests' own statements (StatementCount), each handed to the
 * request's limiter under a one-off key (a space in it: no client key has one),
 * for which the store answers it instead of counting.
 */
const handed = new Map<string, RateCount>()
let handings = 0
const HANDED = Symbol('roster.rateLimitHanded')
type Handing = FastifyRequest & { [HANDED]?: string }

/**
 * The limiters' keyGenerator: the client's key (./client-key.ts, as the login
 * lockout keys it: IPv6 by its /64), or the one-off key of a count handed over.
 */
export function limiterKey (request: FastifyRequest): string {
  return (request as Handing)[HANDED] ?? clientKey(request.ip)
}

/**
 * A store for @fastify/rate-limit that counts in PostgreSQL (table
 * rate_limit_hits, UNLOGGED), so that every instance on the database shares
 * one count per client: N instances allow the limit once, not N times. One
 * UPSERT per counted request, fixed windows as the plugin's own memory store
 * has. Each limiter (`app.rateLimit({ scope, ... })`) counts apart: its
 * `scope` prefixes the client's key. The pruning job deletes ended windows.
 * A limiter run for a request that its statement counted already
 * (StatementCount) is answered that count instead (`handed`).
 */
export function postgresRateLimitStore (db: Database) {
  return class PostgresRateLimitStore {
    private readonly scope: string

    constructor (options: object) {
      this.scope = (options as LimiterOptions).scope ?? '*'
    }

    incr (key: string, callback: Callback, timeWindow: number): void {
      const count = handed.get(key)
      if (count !== undefined) { callback(null, count); return }
      db.query<RateCount>({ ...HIT, values: [storeKey(this.scope, key), timeWindow] })
        .then(({ rows }) => { callback(null, rows[0]) }, (err: Error) => { callback(err) })
    }

    child (options: object): PostgresRateLimitStore {
      return new PostgresRateLimitStore(options)
    }
  }
}

/**
 * A request counted by its route's own first statement rather than by a
 * statement of its own before it (one round trip less: a login step, whose
 * statement counts the lockout's attempt too): the statement counts
 * `key` over `window` ms as the CTE `hitSql` makes it, does its work only when
 * the count is within `max`, and hands the count to `check`, which answers as
 * the limiter would have (its headers; the 429, thrown, when over the limit).
 * A request refused before that statement (the second step of a login, whose
 * mfa_token is checked first) is counted by `alone`, the limiter's own
 * statement, before its refusal is answered (the 429 instead when over).
 *
 * The count's row (one per route and client address) stays locked until the
 * statement commits. On its own, a count writes only the unlogged table and
 * commits without waiting for a WAL flush; inside a statement that writes
 * logged rows it is held through that flush, so concurrent requests from one
 * address queue on it. A login step's rate is argon2's, far below that queue's;
 * a refresh's is not (measured: 1.05 × the baseline's rate and a p99 1.65 × its
 * with the count inside, 1.21 and 0.90 with it on its own), so the refresh
 * keeps the limiter's own statement.
 */
export interface StatementCount { key: string, window: number, max: number, check: (count: RateCount) => Promise<void>, alone: () => Promise<void> }

type Limiter = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>
interface Limit { max: number, timeWindow: number }
interface Deferred { limiter: Limiter, scope: string, limit: Limit }
const DEFERRED = Symbol('roster.rateLimitDeferred')
type Deferring = FastifyRequest & { [DEFERRED]?: Deferred }

function take (request: FastifyRequest): Deferred | undefined {
  const deferred = (request as Deferring)[DEFERRED]
  delete (request as Deferring)[DEFERRED]
  return deferred
}

/**
 * The onRequest hook in a limiter's place on a route whose handler counts its
 * requests in its statement: the count is left to the handler (`countInStatement`),
 * or, for a request that fails before its handler (a body that does not parse
 * or validate), to the error handler (`countDeferred`). So every request is
 * counted once, and one over the limit is answered 429 whatever its body.
 */
export function deferCount (limiter: Limiter, scope: string, limit: Limit): onRequestHookHandler {
  const deferred: Deferred = { limiter, scope, limit }
  return (request, _reply, done) => {
    (request as Deferring)[DEFERRED] = deferred
    done()
  }
}

/** The count of this request, for its handler's statement to make (routes/auth/autohooks.ts left it to every route that says `rateLimitInStatement`). */
export function countInStatement (request: FastifyRequest, reply: FastifyReply): StatementCount {
  const { limiter, scope, limit } = take(request) as Deferred
  return {
    key: storeKey(scope, limiterKey(request)),
    window: limit.timeWindow,
    max: limit.max,
    check: async (count) => {
      const oneOff = `handed ${++handings}`
      handed.set(oneOff, count)
      ;(request as Handing)[HANDED] = oneOff
      try {
        await limiter(request, reply)
      } finally {
        handed.delete(oneOff)
        delete (request as Handing)[HANDED]
      }
    },
    alone: async () => { await limiter(request, reply) }
  }
}

/** For the error handler: the count of a request that failed before its handler could make it, or null. Rejects with the 429 when over the limit. */
export function countDeferred (request: FastifyRequest, reply: FastifyReply): Promise<unknown> | null {
  const deferred = take(request)
  return deferred === undefined ? null : deferred.limiter(request, reply)
}
