import pg, { type CustomTypesConfig } from 'pg'
import type { Queryable } from './database.ts'

/**
 * THE timestamp formatting: a timestamptz column as the API shows it, formatted
 * by PostgreSQL. The same text as `Date#toISOString()` (UTC, milliseconds
 * truncated like node-postgres's Date), without a Date parsed and formatted
 * again for every row. For one row, and inside JSON built in SQL; the rows of
 * a list take `utc` instead.
 */
export function iso (column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
}

/**
 * A timestamptz column of many rows (a list's page, an export's batch) as the
 * API shows it: PostgreSQL sends it as a `timestamp` in UTC, its plain output,
 * and the statement's type parser (`instants`) cuts the API's text out of it —
 * iso()'s text, without to_char, which costs PostgreSQL about 1 µs a value (a
 * tenth of a page of 50 users' CPU there). A statement with such columns
 * carries `types: instants`; JSON built in SQL keeps iso().
 */
export function utc (column: string): string {
  return `(${column} AT TIME ZONE 'UTC')`
}

/** PostgreSQL's type `timestamp` (without time zone): only `utc` columns have it (every table's instants are timestamptz). */
const TIMESTAMP = 1114

/**
 * PostgreSQL's text of a `timestamp` (DateStyle ISO, its default and
 * node-postgres's own premise: `2026-12-05 14:17:21.303067`, its fraction
 * without trailing zeros) as `Date#toISOString()` gives that instant in UTC,
 * milliseconds truncated as iso() does. A year past 9999, before the common
 * era or infinite — never an instant Roster writes — is refused.
 */
export function isoOfTimestamp (text: string): string {
  const fraction = text.length > 19
  if (text[4] !== '-' || text[10] !== ' ' || (fraction ? text[19] !== '.' || text.length > 26 : text.length !== 19)) {
    throw new RangeError(`Not an ISO timestamp of a four-digit year: ${JSON.stringify(text)}`)
  }
  return `${text.slice(0, 10)}T${text.slice(11, 19)}.${fraction ? text.slice(20, 23).padEnd(3, '0') : '000'}Z`
}

/** The type parsers of a statement with `utc` columns: those become the API's text, every other type as node-postgres parses it. */
export const instants: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => oid === TIMESTAMP ? isoOfTimestamp : pg.types.getTypeParser(oid, format)) as CustomTypesConfig['getTypeParser']
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
