import type { FastifyBaseLogger } from 'fastify'
import { transaction, type Database } from '../infra/database.ts'
import { pruneStatements, retentionRepository as repository, type PruneStatement, type RetentionPolicy } from './repository.ts'

/** Rows deleted per statement (and per transaction). */
export const BATCH_SIZE = 1000

export interface RetentionDeps {
  db: Database
  policy: RetentionPolicy
  log: FastifyBaseLogger
}

/** For a run's promise awaited only to know it is over: its failure is the caller's to report. */
const settled = (): void => {}

/** Rows pruned per table: by one run, or since start. */
export type Pruned = Record<string, number>

/**
 * The pruning job: deletes what the tables no longer need (./repository.ts's
 * PRUNED), in batches of BATCH_SIZE rows, each its own short transaction that
 * first takes a transaction-level advisory lock (PgBouncer-safe): when another
 * instance holds it, that instance is pruning and this run stops.
 */
export function createRetentionService ({ db, policy, log }: RetentionDeps) {
  // Each statement with the rows it pruned since start.
  const statements = pruneStatements(policy).map((statement) => ({ statement, total: 0 }))
  let running: Promise<Pruned | null> | null = null
  let stopping = false

  /** One batch: the number of rows deleted, or null when another instance holds the lock. */
  async function batch (statement: PruneStatement): Promise<number | null> {
    return await transaction(db, async (tx) => await repository.tryLock(tx) ? await repository.prune(tx, statement, BATCH_SIZE) : null)
  }

  async function pass (): Promise<Pruned | null> {
    const pruned: Pruned = {}
    for (const entry of statements) {
      if (stopping) break
      let rows = 0
      for (;;) {
        const n = await batch(entry.statement)
        if (n === null) return null
        rows += n
        entry.total += n
        if (n < BATCH_SIZE || stopping) break
      }
      pruned[entry.statement.table] = rows
    }
    return pruned
  }

  async function run (): Promise<Pruned | null> {
    for (let before = running; before !== null; before = running) await before.catch(settled)
    running = pass().finally(() => { running = null })
    return await running
  }

  async function runLogged (): Promise<void> {
    if (running !== null) return
    try {
      const pruned = await run()
      if (pruned === null) log.debug('another instance is pruning')
      else if (Object.values(pruned).some((n) => n > 0)) log.info({ pruned }, 'old rows pruned')
    } catch (err) {
      log.warn({ err }, 'pruning failed (tried again at the next run)')
    }
  }

  return {
    /** Rows pruned by this instance since start, per table (every table of the list, 0 included). */
    get pruned (): Readonly<Pruned> {
      return Object.fromEntries(statements.map(({ statement, total }) => [statement.table, total]))
    },

    /**
     * One run over every table, after the one under way if any. Resolves with
     * the rows deleted per table, or null when another instance was pruning.
     */
    run,

    /** A run whose outcome is logged, never thrown (the timer's); none while the last one still goes on. */
    runLogged,

    /** Stops after the batch under way; resolves once it is done. */
    async stop (): Promise<void> {
      stopping = true
      await running?.catch(settled)
    }
  }
}

export type RetentionService = ReturnType<typeof createRetentionService>
