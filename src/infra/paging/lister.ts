import type { QueryResultRow } from 'pg'
import type { Queryable } from '../database.ts'
import { signCursor, verifyCursor } from './cursor.ts'
import { matchFraction, statisticsReader, type SearchStatistics } from './estimate.ts'
import { nextLink } from './links.ts'
import { createStatements, SEARCH_WINDOW, type ListSpec, type ListStatements, type PageQuery } from './statements.ts'

export { CREATED_AT, textSort } from './statements.ts'
export type { FilterField, ListSpec, ListStatements, PageQuery, SortField } from './statements.ts'

export interface Page<R> {
  rows: R[]
  /** The cursor of the next page, or null on the last page. */
  nextCursor: string | null
  /** The number of rows matching the filters, when `count` was asked for. */
  total: number | null
}

/** How a search finds its page: a window of the sort order first (`window` rows), or the search index at once. */
export interface SearchPlan {
  first: 'window' | 'index'
  window: number
  /** The estimated fraction of rows that match, when the statistics told. */
  fraction: number | null
}

/** The longest window of the sort order a search reads before it asks the search index. */
export const MAX_WINDOW = 20_000
/** Sorted by a searched column, a term with at most this many matches per row of the page is read through the index at once. */
export const CLUSTERED_MATCHES = 500

/**
 * Chooses how a search finds a page of `limit` rows, from the estimated
 * share of rows that match (./estimate.ts). Were the matches spread evenly
 * over the sort order, a page would take `(limit + 1) / fraction` rows of it;
 * through the index it takes every match, `fraction × rows`. The cheaper
 * comes first; a window gets three times the rows it should need. Sorted by a
 * searched column, the matches cluster and a window tells little: the index
 * comes first unless the term is common. Without statistics: a window of
 * SEARCH_WINDOW rows per row of the page.
 */
export function planSearch (statistics: SearchStatistics | null, term: string, limit: number, clustered: boolean): SearchPlan {
  const wanted = limit + 1
  if (statistics === null) return { first: 'window', window: SEARCH_WINDOW * wanted, fraction: null }
  const fraction = matchFraction(statistics, term)
  const matches = fraction * statistics.rows
  const walk = wanted / fraction
  const index = clustered ? matches <= CLUSTERED_MATCHES * wanted : matches <= walk
  return { first: index ? 'index' : 'window', window: Math.min(MAX_WINDOW, Math.ceil(3 * walk)), fraction }
}

export interface Lister<R> {
  /** The statements a query runs, a search's window reading `window` rows (for EXPLAIN in tests and the scale script). Throws on a bad cursor. */
  statements: (query: PageQuery, window?: number) => ListStatements
  /** How a search query would find its page now (null without a search). */
  plan: (query: PageQuery) => Promise<SearchPlan | null>
  /** One page of the list. */
  page: (db: Queryable, query: PageQuery) => Promise<Page<R>>
  /** The `Link` header value pointing at the next page. */
  nextLink: (path: string, query: PageQuery, cursor: string) => string
  /** A cursor for a position in the list (tests, scripts). */
  encode: (query: PageQuery, key: string, id: string) => string
}

/**
 * A keyset-paged list (see ./statements.ts): verifies the cursor, runs the
 * page's statement (a search: its window, then when needed its read through
 * the search index, or that read at once: see planSearch; with count=true the
 * count, at the same time), and signs the next page's cursor. `statistics`
 * reads the search columns' statistics (the pool, not a request's transaction).
 */
export function createLister<R extends QueryResultRow> (spec: ListSpec, secretKey: string, statisticsDb?: Queryable): Lister<R> {
  const { statements, scope, presentFilters, searchOf } = createStatements(spec)
  const encode = (query: PageQuery, key: string, id: string): string => signCursor(secretKey, scope(query), key, id)
  const statementsOf = (query: PageQuery, window?: number): ListStatements =>
    statements(query, query.cursor === undefined ? null : verifyCursor(secretKey, scope(query), query.cursor), window)
  const searchColumns = Object.values(spec.filters ?? {}).find((f) => f.search !== undefined)?.search?.columns ?? []
  const statistics = statisticsDb === undefined || searchColumns.length === 0 ? null : statisticsReader(statisticsDb, spec.from ?? spec.name, searchColumns)

  async function plan (query: PageQuery): Promise<SearchPlan | null> {
    const searched = searchOf(query)
    if (searched === null) return null
    return planSearch(statistics === null ? null : await statistics(), searched.search.term(searched.value), query.limit, searched.clustered)
  }

  async function rowsOf (db: Queryable, { page, fallback }: ListStatements, query: PageQuery, how: SearchPlan | null): Promise<Array<R & { _k: string, id: string }>> {
    if (how?.first === 'index') return (await db.query<R & { _k: string, id: string }>(fallback as ListStatements['page'])).rows
    const { rows } = await db.query<R & { _k: string, id: string }>(page)
    // A window that filled the page is the answer; else the index has every match (also when the window reached the end).
    if (how === null || rows.length > query.limit) return rows
    return (await db.query<R & { _k: string, id: string }>(fallback as ListStatements['page'])).rows
  }

  return {
    statements: statementsOf,
    plan,
    encode,

    async page (db, query) {
      const how = await plan(query)
      const statements = statementsOf(query, how?.window)
      const [rows, counted] = await Promise.all([
        rowsOf(db, statements, query, how),
        statements.count === null ? null : db.query<{ total: number }>(statements.count)
      ])
      let nextCursor: string | null = null
      if (rows.length > query.limit) {
        rows.length = query.limit
        const last = rows[rows.length - 1] as { _k: string, id: string }
        nextCursor = encode(query, last._k, last.id)
      }
      return { rows, nextCursor, total: counted === null ? null : (counted.rows[0] as { total: number }).total }
    },

    nextLink: (path, query, cursor) => nextLink(path, query, presentFilters(query), cursor)
  }
}
