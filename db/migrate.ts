import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Pool } from 'pg'
import { readMigrationFiles } from 'drizzle-orm/migrator'
import { transaction } from '../src/infra/database.ts'
import { migrationsDir } from '../src/infra/paths.ts'

/** Arbitrary constant: the advisory lock that serialises migrations across instances. */
export const MIGRATION_LOCK = 7_264_829_113

interface Journal { entries: Array<{ tag: string }> }

/** Number of migrations shipped with this build. */
export function shippedMigrations (): number {
  const journal = JSON.parse(readFileSync(join(migrationsDir, 'meta', '_journal.json'), 'utf8')) as Journal
  return journal.entries.length
}

/**
 * Applies pending migrations; many instances may call this at once, also
 * through PgBouncer in transaction pooling. drizzle-kit's files and its
 * bookkeeping table (drizzle.__drizzle_migrations, the same rows drizzle's own
 * migrator writes), but everything in ONE transaction that first takes a
 * transaction-level advisory lock: instances starting together wait for the
 * first, then find nothing left to do. (drizzle's migrator runs its checks
 * outside its transaction, and a session-level lock is not kept by a
 * transaction pooler.)
 */
export async function runMigrations (pool: Pool): Promise<void> {
  const migrations = readMigrationFiles({ migrationsFolder: migrationsDir })
  await transaction(pool, async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    await tx.query('CREATE SCHEMA IF NOT EXISTS drizzle')
    await tx.query('CREATE TABLE IF NOT EXISTS drizzle.__drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)')
    const { rows } = await tx.query<{ last: string | null }>('SELECT max(created_at)::text AS last FROM drizzle.__drizzle_migrations')
    const last = Number(rows[0]?.last ?? -1)
    for (const migration of migrations) {
      if (migration.folderMillis <= last) continue
      for (const statement of migration.sql) await tx.query(statement)
      await tx.query('INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ($1, $2)', [migration.hash, migration.folderMillis])
    }
  })
}

/** Migrations recorded as applied in the database (0 when none ever ran). */
export async function appliedMigrations (pool: Pool): Promise<number> {
  const table = await pool.query<{ exists: boolean }>("SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AS exists")
  if (!(table.rows[0] as { exists: boolean }).exists) return 0
  const count = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations')
  return (count.rows[0] as { n: number }).n
}
