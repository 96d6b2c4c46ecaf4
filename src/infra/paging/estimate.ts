import type { Queryable } from '../database.ts'

/**
 * How common a search term is, from the statistics PostgreSQL's ANALYZE keeps
 * anyway (pg_stats of the search indexes' expressions, pg_class.reltuples):
 * the same sample the planner reads to estimate `LIKE '%term%'`, held in
 * memory and applied by the app, so that a search picks its plan without
 * asking PostgreSQL to plan the statement again for every term.
 */

/** One searched expression as pg_stats describes it: its most common values with their frequencies, and the histogram of the rest. */
export interface ColumnStatistics {
  nullFraction: number
  values: string[]
  frequencies: number[]
  histogram: string[]
}

export interface SearchStatistics {
  /** Rows in the table (pg_class.reltuples). */
  rows: number
  /** The searched expressions; a row matches when any of them contains the term. */
  columns: ColumnStatistics[]
}

/** The histogram's values joined by NUL, which PostgreSQL text never holds: a match lies within one value. */
const joinedHistograms = new WeakMap<ColumnStatistics, string>()

/** How many values contain `term`: native substring searches over the joined values, not a test per value. */
function valuesContaining (column: ColumnStatistics, term: string): number {
  if (term.includes('\0')) return 0
  let joined = joinedHistograms.get(column)
  if (joined === undefined) joinedHistograms.set(column, joined = column.histogram.join('\0'))
  let count = 0
  for (let at = joined.indexOf(term); at !== -1; at = joined.indexOf(term, at)) {
    count++
    // On to the next value: this one is counted once, however often it holds the term.
    at = joined.indexOf('\0', at)
    if (at === -1) break
  }
  return count
}

/**
 * The fraction of rows whose expression contains `term`, as PostgreSQL's
 * patternsel estimates it: the frequencies of the most common values that
 * contain it, plus the share of histogram values that do over the remaining
 * rows. When no sampled value contains it, half a sample's worth: the term is
 * rarer than the sample can tell.
 */
export function containsFraction (column: ColumnStatistics, term: string): number {
  let common = 0
  let commonTotal = 0
  column.values.forEach((value, i) => {
    const frequency = column.frequencies[i] as number
    commonTotal += frequency
    if (value.includes(term)) common += frequency
  })
  const rest = Math.max(0, 1 - column.nullFraction - commonTotal)
  const samples = column.histogram.length
  const hits = samples === 0 ? 0 : valuesContaining(column, term)
  const share = samples === 0 ? 0 : Math.max(hits, common === 0 ? 0.5 : 0) / samples
  return Math.min(1, common + share * rest)
}

/** Terms estimated against one copy of the statistics (a search's pages repeat its term), at most MEMO_TERMS. */
const memos = new WeakMap<SearchStatistics, Map<string, number>>()
const MEMO_TERMS = 1000

/** The fraction of rows where any searched expression contains `term` (the expressions taken as independent, as the planner does). */
export function matchFraction (statistics: SearchStatistics, term: string): number {
  let memo = memos.get(statistics)
  if (memo === undefined) memos.set(statistics, memo = new Map())
  let fraction = memo.get(term)
  if (fraction === undefined) {
    fraction = 1 - statistics.columns.reduce((none, column) => none * (1 - containsFraction(column, term)), 1)
    if (memo.size >= MEMO_TERMS) memo.clear()
    memo.set(term, fraction)
  }
  return fraction
}

/** How long statistics read from PostgreSQL are used before they are read again (ANALYZE changes them rarely). */
export const STATISTICS_TTL = 5 * 60_000

/**
 * The statistics of a table's searched columns, read from pg_stats (values
 * lowercased, as searches compare them) at most once per STATISTICS_TTL: the
 * first search waits for them, later ones use the copy they have while a
 * fresh one is read. Null while the table has not been analysed (a new
 * database) or a column has no statistics: searches then go without an
 * estimate. A failed read is tried again at the next search.
 */
export function statisticsReader (db: Queryable, table: string, columns: string[], ttl = STATISTICS_TTL): () => Promise<SearchStatistics | null> {
  let cached: SearchStatistics | null | undefined
  let reading: Promise<SearchStatistics | null> | null = null
  let readAt = 0
  const read = async (): Promise<SearchStatistics | null> => {
    const { rows } = await db.query<{ rows: number, column: string | null, nullFraction: number, values: string[] | null, frequencies: number[] | null, histogram: string[] | null }>({
      name: 'paging_search_statistics',
      text: `SELECT c.reltuples::float8 AS rows, s.attname AS column, s.null_frac::float8 AS "nullFraction",
          s.most_common_vals::text::text[] AS values, s.most_common_freqs::float8[] AS frequencies, s.histogram_bounds::text::text[] AS histogram
        FROM pg_class c LEFT JOIN pg_stats s ON s.schemaname = current_schema() AND s.tablename = $1 AND s.attname = ANY($2::text[])
        WHERE c.oid = to_regclass($1)`,
      values: [table, columns]
    })
    const found = columns.map((column) => rows.find((r) => r.column === column))
    const analysed = (rows[0]?.rows ?? -1) >= 0
    if (!analysed || found.some((c) => c === undefined)) return null
    const lower = (values: string[] | null): string[] => (values ?? []).map((v) => v.toLowerCase())
    return {
      rows: rows[0]?.rows as number,
      columns: found.map((c) => ({ nullFraction: c?.nullFraction as number, values: lower(c?.values ?? null), frequencies: c?.frequencies ?? [], histogram: lower(c?.histogram ?? null) }))
    }
  }
  return async () => {
    if (reading === null && (cached === undefined || Date.now() - readAt >= ttl)) {
      readAt = Date.now()
      reading = read().then((statistics) => { cached = statistics }, () => { readAt = 0; cached ??= null })
        .then(() => { reading = null; return cached as SearchStatistics | null })
    }
    return cached === undefined ? await (reading as Promise<SearchStatistics | null>) : cached
  }
}
