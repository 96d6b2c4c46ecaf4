import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Pool } from 'pg'
import { drizzle } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import { migrationsDir } from '../src/infra/paths.ts'

/** Arbitrary constant: the advisory lock that serialises migrations across instances. */
const MIGRATION_LOCK = 7_264_829_113

interface Journal { entries: Array<{ tag: string }> }

/** Number of migrations shipped with this build. */
export function shippedMigrations (): number {
  const journal = JSON.parse(readFileSync(join(migrationsDir, 'meta', '_journal.json'), 'utf8')) as Journal
  return journal.entries.length
}

/** Applies pending migrations; many instances may call this at once. */
export async function runMigrations (pool: Pool): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    try {
      await migrate(drizzle({ client }), { migrationsFolder: migrationsDir })
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK])
    }
  } finally {
    client.release()
  }
}

/** Migrations recorded as applied in the database (0 when none ever ran). */
export async function appliedMigrations (pool: Pool): Promise<number> {
  const table = await pool.query<{ exists: boolean }>("SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AS exists")
  if (!(table.rows[0] as { exists: boolean }).exists) return 0
  const count = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations')
  return (count.rows[0] as { n: number }).n
}
