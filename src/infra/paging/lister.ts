import type { QueryResultRow } from 'pg'
import type { Queryable } from '../database.ts'
import { signCursor, verifyCursor } from './cursor.ts'
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

export interface Lister<R> {
  /** The statements a query runs (for EXPLAIN in tests and the scale script). Throws on a bad cursor. */
  statements: (query: PageQuery) => ListStatements
  /** One page of the list. */
  page: (db: Queryable, query: PageQuery) => Promise<Page<R>>
  /** The `Link` header value pointing at the next page. */
  nextLink: (path: string, query: PageQuery, cursor: string) => string
  /** A cursor for a position in the list (tests, scripts). */
  encode: (query: PageQuery, key: string, id: string) => string
}

/**
 * A keyset-paged list (see ./statements.ts): verifies the cursor, runs the
 * page's statement (and, for a search whose window held too few matches, its
 * fallback; with count=true the count, at the same time), and signs the next
 * page's cursor.
 */
export function createLister<R extends QueryResultRow> (spec: ListSpec, secretKey: string): Lister<R> {
  const { statements, scope, presentFilters } = createStatements(spec)
  const encode = (query: PageQuery, key: string, id: string): string => signCursor(secretKey, scope(query), key, id)
  const statementsOf = (query: PageQuery): ListStatements =>
    statements(query, query.cursor === undefined ? null : verifyCursor(secretKey, scope(query), query.cursor))

  async function rowsOf (db: Queryable, { page, fallback }: ListStatements, query: PageQuery): Promise<Array<R & { _k: string, id: string }>> {
    const { rows } = await db.query<R & { _k: string, id: string, _n?: number }>(page)
    if (fallback === null) return rows
    // A window: a full page, or the end of the list, is the answer; else the window held too few matches.
    const found = rows.filter((r) => r.id !== null)
    if (found.length > query.limit || (rows[0] as { _n: number })._n < SEARCH_WINDOW * (query.limit + 1)) return found
    return (await db.query<R & { _k: string, id: string }>(fallback)).rows
  }

  return {
    statements: statementsOf,
    encode,

    async page (db, query) {
      const statements = statementsOf(query)
      const [rows, counted] = await Promise.all([
        rowsOf(db, statements, query),
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
