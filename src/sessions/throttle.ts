/**
 * The login lockout: password attempts are counted per email (known or not,
 * so a lock reveals nothing) twice, against two keys, before the password is
 * checked:
 *
 * - the email from one client address: LOCKOUT_THRESHOLD attempts that did not
 *   succeed within LOCKOUT_WINDOW seconds lock it for LOCKOUT_DURATION. An
 *   attacker locks out their own address, not the owner on another one.
 * - the email from anywhere (`client = '*'`): LOCKOUT_ACCOUNT_THRESHOLD, several
 *   times higher, bounds a guesser spread over many addresses.
 *
 * An attempt is counted on the account key only once its client key took it,
 * so attempts refused by a locked client key never reach the account-wide
 * count: an attacker cannot push the owner over the ceiling with refused tries.
 *
 * Attempts are counted as failures when they start, so that concurrent guesses
 * cannot slip past the limit: at most the threshold passwords are ever checked
 * per key. A correct password gives its attempt back (the client key is
 * forgotten, the account key counts one less and unlocks below its ceiling).
 * So a lock reached while attempts are still being checked may be undone by
 * one of them succeeding: such a lock is provisional, and an attempt meeting it
 * waits (polling) for the lock to be undone or to become final instead of being
 * refused at once. That is how a burst of concurrent correct logins is never
 * refused. An instance knows which attempts it is checking itself; of the
 * others' it knows only when they were counted (`other_attempt_at`, the latest
 * attempt counted by another instance than the latest one), and one counted
 * more than SETTLE_SECONDS ago has been checked. So, as seen by one instance, a
 * lock is final when it checks no attempt of that email itself and no other
 * instance counted one in the last SETTLE_SECONDS: a person retrying on the
 * same instance gets the 429 at once, and otherwise within SETTLE_SECONDS.
 */
export interface LockoutPolicy {
  /** Attempts per email and client address (LOCKOUT_THRESHOLD). */
  threshold: number
  /** Attempts per email from all addresses (LOCKOUT_ACCOUNT_THRESHOLD). */
  accountThreshold: number
  /** seconds */
  window: number
  /** seconds */
  duration: number
}

/**
 * Seconds after the latest attempt counted on a locked key during which the
 * lock may still be undone by an attempt being checked: far longer than a
 * password check takes (argon2 at OWASP's cost: tens of milliseconds).
 */
export const SETTLE_SECONDS = 5

/** The client key of the account-wide row. */
export const ANY_CLIENT = '*'

/**
 * The parameters of ATTEMPT, in order: $1 email key, $2 client key, $3 and $4
 * thresholds, $5 duration, $6 window, $7 settling seconds, $8 the counting instance.
 */
export const attemptParams = (email: string, client: string, policy: LockoutPolicy, instance: string): unknown[] =>
  [email, client, policy.threshold, policy.accountThreshold, policy.duration, policy.window, SETTLE_SECONDS, instance]

const LOCK = 'now() + make_interval(secs => $5::int)'
const FRESH = '(t.window_started_at <= now() - make_interval(secs => $6::int) OR t.locked_until IS NOT NULL)'
const FAILURES = `CASE WHEN ${FRESH} THEN 1 ELSE t.failures + 1 END`
const WINDOW_START = `CASE WHEN ${FRESH} THEN now() ELSE t.window_started_at END`

/** One attempt counted on the row of `client` (a SQL expression) with `threshold` (a placeholder), from the rows of `source`. */
function count (client: string, threshold: string, source: string): string {
  const locked = `CASE WHEN ${FAILURES} >= ${threshold}::int THEN ${LOCK} END`
  return `INSERT INTO login_throttle AS t (email, client, failures, window_started_at, last_attempt_at, last_attempt_by, locked_until, expires_at)
      SELECT $1, ${client}, 1, now(), now(), $8::text, CASE WHEN 1 >= ${threshold}::int THEN ${LOCK} END,
        greatest(now() + make_interval(secs => $6::int), CASE WHEN 1 >= ${threshold}::int THEN ${LOCK} END)
      ${source}
    ON CONFLICT (email, client) DO UPDATE SET
      failures = ${FAILURES},
      window_started_at = ${WINDOW_START},
      other_attempt_at = CASE WHEN t.last_attempt_by = $8::text THEN t.other_attempt_at ELSE t.last_attempt_at END,
      last_attempt_at = now(),
      last_attempt_by = $8::text,
      locked_until = ${locked},
      expires_at = greatest(${WINDOW_START} + make_interval(secs => $6::int), ${locked})
    WHERE t.locked_until IS NULL OR t.locked_until <= now()
    RETURNING t.locked_until IS NOT NULL AS locked`
}

/** The account-wide row locked, as the statement began. */
const ACCOUNT_LOCKED = `EXISTS (SELECT 1 FROM login_throttle WHERE email = $1 AND client = '${ANY_CLIENT}' AND locked_until > now())`

/**
 * CTEs `by_client` and `by_account` counting one attempt (see above); an attempt
 * is taken when both return a row, and a row returned `locked` was locked by it
 * (a key already locked takes no attempt). Nothing is counted on the client key while
 * the account key is locked, nor on the account key unless the client key took it;
 * nor at all unless the SQL condition `when` holds (a login over its rate limit).
 */
export const attempt = (when?: string): string => `by_client AS (
    ${count('$2', '$3', `WHERE NOT ${ACCOUNT_LOCKED}${when === undefined ? '' : ` AND ${when}`}`)}
  ), by_account AS (
    ${count(`'${ANY_CLIENT}'`, '$4', 'FROM by_client')}
  )`
export const ATTEMPT = attempt()

/** The keys' rows as the statement began, locked. */
const LOCKED_ROWS = `login_throttle WHERE email = $1 AND client IN ($2, '${ANY_CLIENT}') AND locked_until > now()`

/**
 * The columns telling a refused attempt what to do: `counted`; `retryAfter`,
 * the seconds until the keys unlock (the whole LOCKOUT_DURATION when a
 * concurrent attempt locked them after this statement began); `settlesIn`, the
 * milliseconds during which other instances' attempts may still undo the lock
 * (0: none can; all of SETTLE_SECONDS when it was locked concurrently);
 * `lockedClient` and `lockedAccount`, whether this attempt locked the key
 * (roster_lockouts_total).
 */
const OTHERS_LATEST = 'CASE WHEN last_attempt_by = $8::text THEN other_attempt_at ELSE last_attempt_at END'
export const OUTCOME = `EXISTS (SELECT 1 FROM by_account) AS counted,
    coalesce((SELECT max(greatest(1, ceil(extract(epoch FROM locked_until - now())))) FROM ${LOCKED_ROWS}), $5)::int AS "retryAfter",
    coalesce((SELECT min(CASE WHEN ${OTHERS_LATEST} IS NULL THEN 0
      ELSE greatest(0, ceil(extract(epoch FROM ${OTHERS_LATEST} + make_interval(secs => $7::int) - now()) * 1000)) END) FROM ${LOCKED_ROWS}), $7::int * 1000)::int AS "settlesIn",
    coalesce((SELECT locked FROM by_client), false) AS "lockedClient",
    coalesce((SELECT locked FROM by_account), false) AS "lockedAccount"`

/**
 * A correct password gives its attempt back (CTEs; the email, client and
 * account threshold are the caller's placeholders): the client key is
 * forgotten; the account key counts `attempts` less (a login with a second
 * factor gives back 2: its password's and its code's) and unlocks below its
 * threshold (a row at 0 stays until pruned: deleting it here would lose a
 * concurrent give-back). Only when the SQL condition `when` holds (the session
 * started). Rows are locked client key first, as ATTEMPT does (the account CTE
 * reads `forgotten`, which makes it run first), so that the two never deadlock.
 */
export const giveBack = (email: string, client: string, accountThreshold: string, attempts: 1 | 2, when = 'true'): string => `forgotten AS (
    DELETE FROM login_throttle WHERE email = ${email} AND client = ${client} AND ${when} RETURNING 1
  ), given_back AS (
    UPDATE login_throttle SET failures = greatest(failures - ${attempts}, 0),
      locked_until = CASE WHEN failures - ${attempts} < ${accountThreshold}::int THEN NULL ELSE locked_until END
    FROM (SELECT count(*) FROM forgotten) AS client_first
    WHERE email = ${email} AND client = '${ANY_CLIENT}' AND ${when}
  )`
