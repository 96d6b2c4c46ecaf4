import { sql, type SQL } from 'drizzle-orm'
import type { NodePgDatabase } from 'drizzle-orm/node-postgres'

type Exec = Pick<NodePgDatabase<Record<string, unknown>>, 'execute'>

/** LOCKOUT_THRESHOLD failed attempts within LOCKOUT_WINDOW seconds lock for LOCKOUT_DURATION seconds. */
export interface LockoutPolicy {
  threshold: number
  /** seconds */
  window: number
  /** seconds */
  duration: number
}

/**
 * A CTE `attempt` that counts one password attempt against `key` (a normalised
 * email, whether or not an account has it) before the password is checked, so
 * that concurrent guesses cannot slip past the limit. It counts nothing (and
 * returns no row) while the key is locked. A new window starts when the old one
 * is over or a lock has ended; reaching the threshold locks. A correct password
 * deletes the row again (`clearAttempts`, or the login's own statement).
 */
export function countAttemptCte (key: string, policy: LockoutPolicy): SQL {
  const lock = sql`now() + make_interval(secs => ${policy.duration})`
  const fresh = sql`(t.window_started_at <= now() - make_interval(secs => ${policy.window}) OR t.locked_until IS NOT NULL)`
  const failures = sql`CASE WHEN ${fresh} THEN 1 ELSE t.failures + 1 END`
  return sql`attempt AS (
    INSERT INTO login_throttle AS t (email, failures, window_started_at, locked_until)
    VALUES (${key}, 1, now(), CASE WHEN 1 >= ${policy.threshold} THEN ${lock} END)
    ON CONFLICT (email) DO UPDATE SET
      failures = ${failures},
      window_started_at = CASE WHEN ${fresh} THEN now() ELSE t.window_started_at END,
      locked_until = CASE WHEN ${failures} >= ${policy.threshold} THEN ${lock} END
    WHERE t.locked_until IS NULL OR t.locked_until <= now()
    RETURNING 1
  )`
}

/**
 * Seconds until `key` is unlocked, as the statement began; the whole
 * LOCKOUT_DURATION when a concurrent attempt locked it meanwhile (or it is not
 * locked: then the value is not used).
 */
export function retryAfterSql (key: string, policy: LockoutPolicy): SQL {
  return sql`coalesce((SELECT greatest(1, ceil(extract(epoch FROM locked_until - now())))::int FROM login_throttle WHERE email = ${key} AND locked_until > now()), ${policy.duration})`
}

/** Counts an attempt; when the key is locked nothing is counted and `retryAfter` says for how many seconds still. */
export async function countAttempt (db: Exec, key: string, policy: LockoutPolicy): Promise<{ counted: boolean, retryAfter: number }> {
  const { rows } = await db.execute<{ counted: boolean, retry_after: number }>(sql`
    WITH ${countAttemptCte(key, policy)}
    SELECT EXISTS (SELECT 1 FROM attempt) AS counted, ${retryAfterSql(key, policy)}::int AS retry_after`)
  const row = rows[0] as { counted: boolean, retry_after: number }
  return { counted: row.counted, retryAfter: row.retry_after }
}

/** A correct password: the failed attempts of `key` are forgotten. */
export async function clearAttempts (db: Exec, key: string): Promise<void> {
  await db.execute(sql`DELETE FROM login_throttle WHERE email = ${key}`)
}
