/**
 * THE timestamp formatting: a timestamptz column as the API shows it, formatted
 * by PostgreSQL. The same text as `Date#toISOString()` (UTC, milliseconds
 * truncated like node-postgres's Date), without a Date parsed and formatted
 * again for every row.
 */
export function iso (column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
}
