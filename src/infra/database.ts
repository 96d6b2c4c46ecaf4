import pg, { type Pool, type PoolClient, type QueryConfig, type QueryResult, type QueryResultRow } from 'pg'

/** The database: node-postgres's pool (one per app, made by plugins/db.ts through @fastify/postgres). */
export type Database = Pool

/** Anything that runs a query: the pool, or a client inside a transaction. Repositories take this. */
export interface Queryable {
  query: <R extends QueryResultRow = QueryResultRow>(config: QueryConfig) => Promise<QueryResult<R>>
}

/**
 * node-postgres's Client, but every statement goes unnamed: a repository's
 * `{ name, text }` is sent as `{ text }`, so PostgreSQL parses it each time
 * instead of keeping it per connection. For poolers that cannot keep named
 * prepared statements across the server connections they hand out (PgBouncer
 * < 1.21 in transaction pooling); DB_PREPARED_STATEMENTS=false picks it.
 */
class UnnamedStatementsClient extends pg.Client {
  // pg's query() has a dozen overloads; this one only takes a name out of a config object and passes everything on.
  override query (...args: unknown[]): never {
    const [config, ...rest] = args as [{ name?: unknown, submit?: unknown } | string, ...unknown[]]
    const plain = typeof config === 'object' && config !== null && typeof config.submit !== 'function'
    const unnamed = plain && config.name !== undefined ? { ...config, name: undefined } : config
    return (super.query as (...a: unknown[]) => never)(unnamed, ...rest)
  }
}

/** THE one place statement names are kept or dropped: the Client class of every pool (DB_PREPARED_STATEMENTS). */
export function clientClass (preparedStatements: boolean): typeof pg.Client {
  return preparedStatements ? pg.Client : UnnamedStatementsClient
}

/**
 * THE transaction helper: runs `fn` between BEGIN and COMMIT on a pooled
 * client of its own, rolls back when anything throws, and always gives the
 * client back: destroyed (not handed out again) when its connection failed or
 * its ROLLBACK failed, kept otherwise. BEGIN runs inside the try, so a BEGIN
 * on a connection that just died (a database restart, a partition) cannot leak
 * the client and exhaust the pool.
 */
export async function transaction<T> (db: Database, fn: (tx: PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect()
  try {
    await client.query('BEGIN')
    const result = await fn(client)
    await client.query('COMMIT')
    client.release()
    return result
  } catch (err) {
    const rollbackFailed = await client.query('ROLLBACK').then(() => undefined, (rollbackError: Error) => rollbackError)
    client.release(rollbackFailed ?? (isDatabaseUnavailable(err as Error) ? err as Error : undefined))
    throw err
  }
}

/** The PostgreSQL error behind an error (walking `.cause`): its SQLSTATE and the constraint it names, if any. */
export function constraint (err: unknown): { code?: string, constraint?: string } {
  const e = err as { code?: string, constraint?: string, cause?: unknown }
  return e.code === undefined && e.cause !== undefined ? constraint(e.cause) : e
}

/**
 * A constraint-violation mapper from a domain's table of `constraint name → error`:
 * the error the violation means, or the original error when it is not in the table.
 */
export function violations (byConstraint: Record<string, () => Error>): (err: unknown) => unknown {
  return (err) => {
    const { code, constraint: name } = constraint(err)
    const make = code === '23505' || code === '23503' ? byConstraint[name as string] : undefined
    return make === undefined ? err : make()
  }
}

/** What node-postgres raises when the database cannot be reached, is restarting, or the pool is exhausted. */
const UNAVAILABLE_CODES = new Set([
  '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006', '57014',
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'
])
// `Query read timeout`: node-postgres gave up waiting for an answer (query_timeout), e.g. the server vanished mid-query.
const UNAVAILABLE_MESSAGE = /timeout exceeded when trying to connect|Connection terminated|Client has encountered a connection error|Cannot use a pool after calling end|Query read timeout/i

export function isDatabaseUnavailable (err: { code?: string, message: string, cause?: unknown }): boolean {
  if (UNAVAILABLE_CODES.has(err.code ?? '')) return true
  if (UNAVAILABLE_MESSAGE.test(err.message)) return true
  return err.cause instanceof Error && isDatabaseUnavailable(err.cause)
}

/** What the pool reports about itself (plugins/metrics.ts turns it into Prometheus histograms). */
export interface DatabaseSignals {
  /** A statement was answered (or failed): its name for a named statement, UNNAMED otherwise, and how long it took. */
  query: (statement: string, seconds: number) => void
  /** A pooled connection was handed out (or the wait for one failed) after this long. */
  poolWait: (seconds: number) => void
}

/** The statement label of every query without a name (searches planned per request, BEGIN/COMMIT, one-off SQL). */
export const UNNAMED = 'unnamed'

type Callback = (...args: unknown[]) => void
const seconds = (since: number): number => (performance.now() - since) / 1000

/**
 * Reports every statement's duration and every wait for a connection of the
 * pool to `signals`: wraps the pool's `connect` (which its `query` uses too)
 * and the `query` of each client it opens, in the callback form node-postgres
 * uses inside the pool as well as the promise form. The statement label is the
 * statement's name, so the number of label values is the number of named
 * statements in the code, whatever the requests.
 */
export function observePool (pool: Pool, signals: DatabaseSignals): void {
  const connect = pool.connect.bind(pool) as (callback?: Callback) => Promise<PoolClient> | undefined
  pool.connect = ((callback?: Callback) => {
    const started = performance.now()
    const waited = (): void => { signals.poolWait(seconds(started)) }
    if (callback !== undefined) return connect((...args) => { waited(); callback(...args) })
    const connecting = connect() as Promise<PoolClient>
    connecting.then(waited, waited)
    return connecting
  }) as Pool['connect']
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown
    client.query = ((...args: unknown[]) => {
      const config = args[0] as { name?: unknown } | string
      const statement = typeof config === 'object' && typeof config.name === 'string' ? config.name : UNNAMED
      const started = performance.now()
      const answered = (): void => { signals.query(statement, seconds(started)) }
      const last = args.length - 1
      const callback = args[last]
      if (typeof callback === 'function') {
        args[last] = (...result: unknown[]) => { answered(); (callback as Callback)(...result) }
        return query(...args)
      }
      const running = query(...args) as Promise<unknown>
      running.then(answered, answered)
      return running
    }) as PoolClient['query']
  })
}
