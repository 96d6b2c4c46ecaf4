import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ClientBase, Pool } from 'pg'
import { migrationsDir } from '../src/infra/paths.ts'

/** Arbitrary constant: the advisory lock that serialises migrations across instances. */
const MIGRATION_LOCK = 7_264_829_113

interface Journal { entries: Array<{ tag: string, when: number }> }

const readJournal = (): Journal => JSON.parse(readFileSync(join(migrationsDir, 'meta', '_journal.json'), 'utf8')) as Journal

/** Number of migrations shipped with this build. */
export function shippedMigrations (): number {
  return readJournal().entries.length
}

/** Whether drizzle's table of applied migrations exists (it does once any migration ran). */
async function migrationsTable (client: Pool | ClientBase): Promise<boolean> {
  const table = await client.query<{ exists: boolean }>("SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AS exists")
  return (table.rows[0] as { exists: boolean }).exists
}

/**
 * Whether drizzle's migrator would apply anything: it applies every shipped
 * migration newer (journal `when`) than the newest one recorded in
 * drizzle.__drizzle_migrations (`created_at`), so this asks the same question.
 */
export async function migrationsPending (client: Pool | ClientBase): Promise<boolean> {
  const newest = Math.max(...readJournal().entries.map((e) => e.when))
  if (!await migrationsTable(client)) return true
  const { rows: [row] } = await client.query<{ applied: string | null }>('SELECT max(created_at)::text AS applied FROM drizzle.__drizzle_migrations')
  const applied = (row as { applied: string | null }).applied
  return applied === null || Number(applied) < newest
}

/**
 * Applies pending migrations; many instances may call this at once. drizzle's
 * migrator (about 1.5 MB of heap, kept for the life of the process once
 * imported) is loaded only when there is something to apply.
 */
export async function runMigrations (pool: Pool): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    try {
      if (await migrationsPending(client)) {
        const [{ drizzle }, { migrate }] = await Promise.all([import('drizzle-orm/node-postgres'), import('drizzle-orm/node-postgres/migrator')])
        await migrate(drizzle({ client }), { migrationsFolder: migrationsDir })
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK])
    }
  } finally {
    client.release()
  }
}

/** Migrations recorded as applied in the database (0 when none ever ran). */
export async function appliedMigrations (pool: Pool): Promise<number> {
  if (!await migrationsTable(pool)) return 0
  const count = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations')
  return (count.rows[0] as { n: number }).n
}
