import type { QueryConfig } from 'pg'
import { instants } from '../sql.ts'

/**
 * Keyset pagination, shared by every list (GET /users, GET /audit-events,
 * GET /auth/admins). A page is `ORDER BY <sort key>, id LIMIT n` starting
 * strictly after the last row of the previous page, `(key, id) > (k, i)` (or
 * `<` descending), so pages never repeat or skip rows under concurrent inserts
 * and no OFFSET is ever used: a page deep into a list costs what the first does.
 * Every sort must be backed by an index on `(key, id)`.
 *
 * The cursor is opaque to clients (./cursor.ts).
 *
 * Each query shape (sort, direction, filters present, cursor or not) is one SQL
 * text built once and run as a named prepared statement, so a page is one round
 * trip with no parsing or planning.
 *
 * Search filters (a substring match, `q`) have two statements, both named
 * too: a bounded window of the sort order (the next `window` rows, other
 * filters applied), with the page found among them, and a read of the
 * matches from the search index (`search.from`), sorted past the cursor. A
 * common term fills its page from a short window; a rare one is found through
 * the index, where it has few entries. Which comes first, and how long the
 * window is, the lister decides from how common the term is (./estimate.ts,
 * PostgreSQL's own statistics): nothing is planned per request. When the
 * window is full but the page is not (the term is rarer there than the
 * statistics said, or its matches cluster elsewhere in the order, as they do
 * when the list is sorted by a searched column), the index read follows.
 */

export interface SortField {
  /** SQL expression the list is ordered by; an index on `(expr, id)` must exist. */
  expr: string
  /** SQL type the cursor key is cast back to, e.g. `timestamptz` or `text`. */
  type: string
  /** SQL expression giving the key exactly, as text, for the cursor (default `expr`). Timestamps: `created_at::text`, which keeps microseconds. */
  key?: string
}

export interface FilterField {
  /** The SQL condition, given the placeholder of its parameter: `(p) => \`lower(email) = lower(${p})\`` */
  sql: (placeholder: string) => string
  /** The statement parameter for a query value (default: the value itself). */
  param?: (value: unknown) => unknown
  /** Makes this a search filter: a window of the sort order, or the search index (see above). */
  search?: {
    /** A FROM clause yielding the rows that match, from the search index whatever the planner estimates (named like the table). */
    from: (placeholder: string) => string
    /** The table columns searched, whose statistics (pg_stats) tell how common a term is. */
    columns: string[]
    /** The term as the columns' lowercased values are compared with it. */
    term: (value: unknown) => string
    /** Sorts (API names) on the searched columns, which cluster the matches: a window of them tells little. */
    clusters: string[]
  }
}

export interface ListSpec {
  /** Names the list: the scope of its cursors and the prefix of its statements. */
  name: string
  /**
   * The FROM clause (default: the table named like the list). A list with a
   * search filter reads it in a subquery named after it (`(…) AS users`), so
   * there it must be a bare table name, and `id` and `columns` must name its
   * columns unqualified.
   */
  from?: string
  /** The SELECT list, naming columns as the API does, instants by `utc` (src/infra/sql.ts: `${utc('created_at')} AS "createdAt"`). */
  columns: string
  /** The unique tie-breaker column, a uuid (default `id`). */
  id?: string
  /** Sort fields by API name; `-name` sorts descending. */
  sorts: Record<string, SortField>
  /** The sort when none is asked for, e.g. `createdAt` or `-createdAt`. */
  defaultSort: string
  /** Filters by query parameter name (default none). */
  filters?: Record<string, FilterField>
}

/** The sort by creation time; its cursor key keeps the microseconds (`created_at::text`). */
export const CREATED_AT: SortField = { expr: 'created_at', type: 'timestamptz', key: 'created_at::text' }

/** A sort on a text expression. */
export const textSort = (expr: string): SortField => ({ expr, type: 'text' })

export interface PageQuery {
  limit: number
  cursor?: string | undefined
  sort?: string | undefined
  count?: boolean | undefined
  [filter: string]: unknown
}

/** Without statistics, a search reads this many rows of the sort order per row of the page before it asks the search index. */
export const SEARCH_WINDOW = 20

export interface ListStatements {
  /** The page; with a search filter, the page as found in a window of `window` rows after the cursor. */
  page: QueryConfig
  /** With a search filter: the page as found through the search index. */
  fallback: QueryConfig | null
  count: QueryConfig | null
}

interface Shape {
  /** Unnamed (undefined) for a search's count, planned per request. */
  name: string | undefined
  text: string
  /** Query filter names, in parameter order. */
  filters: string[]
}

type ShapeKind = 'page' | 'window' | 'fallback' | 'count'

/** The SQL of a list: one text per query shape, built once and kept (statement names `${spec.name}_<n>`). */
export function createStatements (list: ListSpec) {
  const spec = { ...list, from: list.from ?? list.name, id: list.id ?? 'id', filters: list.filters ?? {} }
  const filterNames = Object.keys(spec.filters).sort()
  const shapes = new Map<string, Shape>()
  let statements = 0

  function sortOf (query: PageQuery): { name: string, field: SortField, descending: boolean } {
    const sort = query.sort ?? spec.defaultSort
    const descending = sort.startsWith('-')
    const name = descending ? sort.slice(1) : sort
    return { name: sort, field: spec.sorts[name] as SortField, descending }
  }

  function presentFilters (query: PageQuery): string[] {
    return filterNames.filter((f) => query[f] !== undefined)
  }

  /** What a cursor is bound to: the list, the sort and the filters with their values. */
  function scope (query: PageQuery): string {
    return [spec.name, sortOf(query).name, ...presentFilters(query).map((f) => `${f}=${String(query[f])}`)].join('\n')
  }

  const where = (conditions: string[]): string => conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : ''

  /** The SQL of one statement shape; parameters: the filters in `filters` order, then the cursor's key and id, then the limits. */
  function build (kind: ShapeKind, query: PageQuery, filters: string[], withCursor: boolean): string {
    const { field, descending } = sortOf(query)
    const dir = descending ? 'DESC' : 'ASC'
    let n = 0
    let from = spec.from
    const plain: string[] = []
    const search: string[] = []
    for (const f of filters) {
      const filter = spec.filters[f] as FilterField
      const p = `$${++n}`
      if (filter.search === undefined) plain.push(filter.sql(p))
      // The fallback reads the matches of the (first) search from its index instead of the table.
      else if (kind === 'fallback' && from === spec.from) from = filter.search.from(p)
      else search.push(filter.sql(p))
    }
    if (kind === 'count') return `SELECT count(*)::int AS total FROM ${from}${where([...plain, ...search])}`
    if (withCursor) plain.push(`(${field.expr}, ${spec.id}) ${descending ? '<' : '>'} ($${++n}::${field.type}, $${++n}::uuid)`)
    const order = `ORDER BY ${field.expr} ${dir}, ${spec.id} ${dir}`
    const key = field.key ?? field.expr
    if (kind === 'page') return `SELECT ${spec.columns}, ${key} AS "_k" FROM ${from}${where([...search, ...plain])} ${order} LIMIT $${++n}`
    // The matches from the search index, sorted in memory: the page is cut from them before its columns are
    // made (for its rows only rather than every match: 35 → 16 ms for 11,000 matches, when they were made by to_char).
    if (kind === 'fallback') {
      return `SELECT ${spec.columns}, ${key} AS "_k" FROM (SELECT *, ${field.expr} AS "_s" FROM ${from}${where([...search, ...plain])} ${order} LIMIT $${++n}) AS ${spec.from}` +
        ` ORDER BY "_s" ${dir}, ${spec.id} ${dir}`
    }
    // The next `window` rows in order (other filters applied), and the page among them. Read lazily: the scan
    // stops at the page's last row, or at the window's end. The sort key is a column of the window ("_s"), so
    // that its order carries through to the page without another sort.
    const window = `$${++n}`
    const limit = `$${++n}`
    return `SELECT ${spec.columns}, "_k" FROM (SELECT *, ${key} AS "_k", ${field.expr} AS "_s" FROM ${spec.from}${where(plain)} ${order} LIMIT ${window}) AS ${spec.from}` +
      `${where(search)} ORDER BY "_s" ${dir}, ${spec.id} ${dir} LIMIT ${limit}`
  }

  function shapeFor (kind: ShapeKind, query: PageQuery, withCursor: boolean): Shape {
    const filters = presentFilters(query)
    const id = `${kind}|${kind === 'count' ? '' : sortOf(query).name}|${withCursor ? 'after' : ''}|${filters.join(',')}`
    let shape = shapes.get(id)
    if (shape === undefined) {
      // A search's count is planned per request: it may read the whole table or a few index entries.
      const perRequest = kind === 'count' && filters.some((f) => spec.filters[f]?.search !== undefined)
      shape = { name: perRequest ? undefined : `${spec.name}_${++statements}`, text: build(kind, query, filters, withCursor), filters }
      shapes.set(id, shape)
    }
    return shape
  }

  /** The search filter present in a query, if any. */
  function searchOf (query: PageQuery): { search: NonNullable<FilterField['search']>, value: unknown, clustered: boolean } | null {
    const f = presentFilters(query).find((name) => spec.filters[name]?.search !== undefined)
    if (f === undefined) return null
    const search = spec.filters[f]?.search as NonNullable<FilterField['search']>
    return { search, value: query[f], clustered: search.clusters.includes(sortOf(query).name.replace(/^-/, '')) }
  }

  /**
   * The statements of a page, after `position` (the decoded cursor) when there is one; with a
   * search, its window reads `window` rows (default SEARCH_WINDOW per row of the page).
   */
  function statementsFor (query: PageQuery, position: [string, string] | null, window = SEARCH_WINDOW * (query.limit + 1)): ListStatements {
    const params = (shape: Shape): unknown[] => shape.filters.map((f) => {
      const filter = spec.filters[f] as FilterField
      return filter.param === undefined ? query[f] : filter.param(query[f])
    })
    const searching = searchOf(query) !== null
    const statement = (kind: ShapeKind, limits: number[]): QueryConfig => {
      const shape = shapeFor(kind, query, position !== null)
      return { name: shape.name, text: shape.text, values: [...params(shape), ...(position ?? []), ...limits], types: instants }
    }
    const page = searching ? statement('window', [window, query.limit + 1]) : statement('page', [query.limit + 1])
    const fallback = searching ? statement('fallback', [query.limit + 1]) : null
    const count = query.count === true ? shapeFor('count', query, false) : null
    return { page, fallback, count: count === null ? null : { name: count.name, text: count.text, values: params(count) } }
  }

  return { statements: statementsFor, scope, presentFilters, searchOf }
}
