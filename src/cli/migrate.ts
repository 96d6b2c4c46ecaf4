/** `npm run migrate`: applies pending migrations to the configured database (embedded when none is set). */
import { configOrExit } from '../config.ts'
import { openDatabase } from '../../db/open.ts'
import { runMigrations, appliedMigrations } from '../../db/migrate.ts'

const config = configOrExit({ server: false })
const { pool, close } = await openDatabase(config)
let code = 0
try {
  await runMigrations(pool)
  process.stdout.write(`roster: migrations applied (${await appliedMigrations(pool)} in total)\n`)
} catch (err) {
  process.stderr.write(`roster: migration failed: ${(err as Error).message}\n`)
  code = 1
} finally {
  await close()
}
process.exit(code)
