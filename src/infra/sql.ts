import type { Queryable } from './database.ts'

/**
 * THE timestamp formatting: a timestamptz column as the API shows it, formatted
 * by PostgreSQL. The same text as `Date#toISOString()` (UTC, milliseconds
 * truncated like node-postgres's Date), without a Date parsed and formatted
 * again for every row.
 */
export function iso (column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
}

/** A LIKE pattern matching `q` anywhere, its wildcards (`%`, `_`, `\`) taken literally. */
export function containsPattern (q: string): string {
  return `%${q.replace(/[\\%_]/g, '\\$&')}%`
}

/** A condition built elsewhere (SCIM filters, src/scim/query.ts): SQL text with `$n` placeholders and their values. */
export interface Where { text: string, values: unknown[] }

/**
 * One page of a table under a condition, by offset (SCIM pages by index), and
 * the number of rows matching, at the same time. Unnamed statements: each
 * condition is its own shape, planned for its values.
 */
export async function pageWhere<R> (db: Queryable, table: string, columns: string, where: Where, order: string, limit: number, offset: number): Promise<{ rows: R[], total: number }> {
  const n = where.values.length
  const [page, counted] = await Promise.all([
    limit === 0
      ? { rows: [] }
      : db.query({ text: `SELECT ${columns} FROM ${table} WHERE ${where.text} ORDER BY ${order} LIMIT $${n + 1} OFFSET $${n + 2}`, values: [...where.values, limit, offset] }),
    db.query<{ total: number }>({ text: `SELECT count(*)::int AS total FROM ${table} WHERE ${where.text}`, values: where.values })
  ])
  return { rows: page.rows as R[], total: (counted.rows[0] as { total: number }).total }
}
