/** LOCKOUT_THRESHOLD failed attempts within LOCKOUT_WINDOW seconds lock for LOCKOUT_DURATION seconds. */
export interface LockoutPolicy {
  threshold: number
  /** seconds */
  window: number
  /** seconds */
  duration: number
}

/** The parameters of ATTEMPT and RETRY_AFTER, in order: $1 the key, $2 threshold, $3 duration, $4 window. */
export const attemptParams = (key: string, policy: LockoutPolicy): unknown[] => [key, policy.threshold, policy.duration, policy.window]

const LOCK = 'now() + make_interval(secs => $3::int)'
const FRESH = '(t.window_started_at <= now() - make_interval(secs => $4::int) OR t.locked_until IS NOT NULL)'
const FAILURES = `CASE WHEN ${FRESH} THEN 1 ELSE t.failures + 1 END`

/**
 * A CTE `attempt` that counts one password attempt against the key $1 (a
 * normalised email, whether or not an account has it) before the password is
 * checked, so that concurrent guesses cannot slip past the limit. It counts
 * nothing (and returns no row) while the key is locked. A new window starts
 * when the old one is over or a lock has ended; reaching the threshold locks.
 * A correct password deletes the row again (`clearAttempts`, or the login's
 * own statement).
 */
export const ATTEMPT = `attempt AS (
    INSERT INTO login_throttle AS t (email, failures, window_started_at, locked_until)
    VALUES ($1, 1, now(), CASE WHEN 1 >= $2::int THEN ${LOCK} END)
    ON CONFLICT (email) DO UPDATE SET
      failures = ${FAILURES},
      window_started_at = CASE WHEN ${FRESH} THEN now() ELSE t.window_started_at END,
      locked_until = CASE WHEN ${FAILURES} >= $2::int THEN ${LOCK} END
    WHERE t.locked_until IS NULL OR t.locked_until <= now()
    RETURNING 1
  )`

/**
 * Seconds until the key $1 is unlocked, as the statement began; the whole
 * LOCKOUT_DURATION when a concurrent attempt locked it meanwhile (or it is not
 * locked: then the value is not used).
 */
export const RETRY_AFTER = 'coalesce((SELECT greatest(1, ceil(extract(epoch FROM locked_until - now())))::int FROM login_throttle WHERE email = $1 AND locked_until > now()), $3::int)'
