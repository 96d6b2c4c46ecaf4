import type { Queryable } from '../infra/database.ts'

/** What is kept how long (src/config.ts: the *_RETENTION_DAYS settings). */
export interface RetentionPolicy {
  /** Days an ended session is kept. */
  sessionDays: number
  /** Days a sent or failed email, and a delivered or failed webhook delivery, is kept. */
  outboxDays: number
  /** Days audit events are kept; undefined: forever. */
  auditDays: number | undefined
}

/**
 * A table the pruning job keeps bounded: a query for the `ctid`s of rows no
 * longer needed (alias `t`; parameters from $2 on, $1 being the batch size),
 * or null when the policy keeps every row.
 */
export interface Prunable {
  table: string
  rows: (policy: RetentionPolicy) => { select: string, values: unknown[] } | null
}

/** A session ended (logged out, revoked, idle or past its lifetime) more than $2 days ago. */
const ENDED = (s: string): string =>
  `least(coalesce(${s}.revoked_at, 'infinity'), ${s}.expires_at, ${s}.idle_expires_at) < now() - make_interval(days => $2::int)`

/**
 * THE list of what the pruning job deletes, in this order. A branch that adds
 * a table that grows with use adds it here (with the index its condition
 * needs, unless the table stays small).
 */
export const PRUNED: Prunable[] = [
  // Refresh tokens go with their session: used ones must stay while it lives (a used one presented again revokes it).
  { table: 'refresh_tokens', rows: (p) => ({ select: `SELECT t.ctid FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE ${ENDED('s')}`, values: [p.sessionDays] }) },
  { table: 'sessions', rows: (p) => ({ select: `SELECT t.ctid FROM sessions t WHERE ${ENDED('t')}`, values: [p.sessionDays] }) },
  // A used or expired link is refused the same way as an unknown one: nothing to keep.
  { table: 'account_tokens', rows: () => ({ select: 'SELECT t.ctid FROM account_tokens t WHERE t.used_at IS NOT NULL OR t.expires_at <= now()', values: [] }) },
  // Likewise an invitation accepted, revoked or expired (only pending ones are listed; the audit log keeps the history). Owners make few: no index.
  { table: 'invitations', rows: () => ({ select: 'SELECT t.ctid FROM invitations t WHERE t.accepted_at IS NOT NULL OR t.revoked_at IS NOT NULL OR t.expires_at <= now()', values: [] }) },
  // A lockout row past expires_at (its window and its lock are over: src/sessions/throttle.ts) counts for nothing.
  { table: 'login_throttle', rows: () => ({ select: 'SELECT t.ctid FROM login_throttle t WHERE t.expires_at <= now()', values: [] }) },
  // A used mfa_token's jti is kept only while the token could still be presented.
  { table: 'mfa_token_uses', rows: () => ({ select: 'SELECT t.ctid FROM mfa_token_uses t WHERE t.expires_at <= now()', values: [] }) },
  { table: 'rate_limit_hits', rows: () => ({ select: 'SELECT t.ctid FROM rate_limit_hits t WHERE t.reset_at <= now()', values: [] }) },
  { table: 'email_outbox', rows: (p) => ({ select: 'SELECT t.ctid FROM email_outbox t WHERE t.status <> \'pending\' AND t.created_at < now() - make_interval(days => $2::int)', values: [p.outboxDays] }) },
  // Delivered and failed webhook deliveries (their attempts go with them); pending ones are never pruned.
  {
    table: 'webhook_deliveries',
    rows: (p) => ({ select: 'SELECT t.ctid FROM webhook_deliveries t WHERE t.status <> \'pending\' AND t.finished_at < now() - make_interval(days => $2::int)', values: [p.outboxDays] })
  },
  { table: 'idempotency_keys', rows: () => ({ select: 'SELECT t.ctid FROM idempotency_keys t WHERE t.expires_at <= now()', values: [] }) },
  {
    table: 'audit_events',
    rows: (p) => p.auditDays === undefined ? null : { select: 'SELECT t.ctid FROM audit_events t WHERE t.created_at < now() - make_interval(days => $2::int)', values: [p.auditDays] }
  }
]

/**
 * Arbitrary constant: the advisory lock a pruning batch holds, so that one
 * instance prunes at a time. Roster's others: 7_264_829_113 the migrations
 * (db/migrate.ts), 7_264_829_114 the first owner (src/admins/repository.ts).
 */
export const PRUNE_LOCK = 7_264_829_115

const TRY_LOCK = { name: 'retention_try_lock', text: 'SELECT pg_try_advisory_xact_lock($1) AS locked', values: [PRUNE_LOCK] }

export interface PruneStatement { table: string, name: string, text: string, values: unknown[] }

/**
 * The pruning statements under `policy`: each deletes at most $1 rows by
 * ctid, skipping rows another transaction has locked (never waiting on one),
 * so that a batch is short and holds its row locks briefly.
 */
export function pruneStatements (policy: RetentionPolicy, prunable: Prunable[] = PRUNED): PruneStatement[] {
  return prunable.flatMap(({ table, rows }) => {
    const found = rows(policy)
    if (found === null) return []
    return [{
      table,
      name: `retention_prune_${table}`,
      text: `DELETE FROM ${table} WHERE ctid = ANY (ARRAY(${found.select} LIMIT $1 FOR UPDATE OF t SKIP LOCKED))`,
      values: found.values
    }]
  })
}

/** The pruning job's SQL, in the caller's transaction. */
export const retentionRepository = {
  /** Takes the pruning lock until the transaction ends; false when another instance holds it. */
  async tryLock (tx: Queryable): Promise<boolean> {
    return (await tx.query<{ locked: boolean }>(TRY_LOCK)).rows[0]?.locked === true
  },

  /** Deletes up to `limit` rows; answers how many. */
  async prune (tx: Queryable, statement: PruneStatement, limit: number): Promise<number> {
    const { name, text, values } = statement
    // A DELETE always reports its count.
    return (await tx.query({ name, text, values: [limit, ...values] })).rowCount as number
  }
}
