import { Type } from '@sinclair/typebox'
import type { QueryConfig, QueryResult, QueryResultRow } from 'pg'
import { hmac, safeEqual } from './auth/crypto.ts'
import { errors } from './errors.ts'

/**
 * Keyset pagination, shared by every list (GET /users, GET /audit-events,
 * GET /auth/admins). A page is `ORDER BY <sort key>, id LIMIT n` starting
 * strictly after the last row of the previous page, `(key, id) > (k, i)` (or
 * `<` descending), so pages never repeat or skip rows under concurrent inserts
 * and no OFFSET is ever used: a page deep into a list costs what the first does.
 * Every sort must be backed by an index on `(key, id)`.
 *
 * The cursor is opaque to clients: the last row's sort key and id, signed with
 * an HMAC (SECRET_KEY) over the list, the sort and the filters. A cursor that
 * was tampered with, signed with another key, or made for another list, sort
 * or filter set is refused (400 ROSTER_INVALID_CURSOR).
 *
 * Each query shape (sort, direction, filters present, cursor or not) is one SQL
 * text built once and run as a named prepared statement, so a page is one round
 * trip with no parsing or planning.
 *
 * Search filters (a substring match, `q`) are the exception. Their statements
 * are unnamed, so PostgreSQL plans them for each request's value: a common term
 * is found by reading the sort index until the page is full, a rare one through
 * the search index. But the planner assumes matches are spread evenly over the
 * sort order, which fails when the sort is on the searched column itself: users
 * whose email contains "user12", sorted by email, sit together, and reading the
 * email index from the other end until they come costs a scan of most of it. For
 * those sorts (`clusters`) a page reads a bounded window of the sort order first
 * (SEARCH_WINDOW rows per row of the page), where a common term fills the page;
 * only when the window is full but the page is not does a second statement read
 * the matches from the search index (`search.from`) and sort those past the
 * cursor, which is cheap because the term is rare there.
 */

/** Anything that runs a query: the pool, or a client inside a transaction. */
export interface Queryable {
  query: <R extends QueryResultRow = QueryResultRow>(config: QueryConfig) => Promise<QueryResult<R>>
}

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
  /** Makes this a search filter, planned for each request's value. */
  search?: {
    /**
     * A FROM clause yielding the rows that match, from the search index whatever the planner
     * estimates (named like the table), for when the window holds too few matches.
     */
    from: (placeholder: string) => string
    /** Sorts (API names) on the searched columns, which cluster the matches: these read a window first. */
    clusters: string[]
  }
}

export interface ListSpec {
  /** Names the list: the scope of its cursors and the prefix of its statements. */
  name: string
  /** The FROM clause. */
  from: string
  /** The SELECT list, naming columns as the API does (`created_at AS "createdAt"`). */
  columns: string
  /** The unique tie-breaker column, a uuid. */
  id: string
  /** Sort fields by API name; `-name` sorts descending. */
  sorts: Record<string, SortField>
  /** The sort when none is asked for, e.g. `createdAt` or `-createdAt`. */
  defaultSort: string
  /** Filters by query parameter name. */
  filters: Record<string, FilterField>
}

export interface PageQuery {
  limit: number
  cursor?: string | undefined
  sort?: string | undefined
  count?: boolean | undefined
  [filter: string]: unknown
}

export interface Page<R> {
  rows: R[]
  /** The cursor of the next page, or null on the last page. */
  nextCursor: string | null
  /** The number of rows matching the filters, when `count` was asked for. */
  total: number | null
}

export interface ListStatements {
  /** The page; with a search filter, the page as found in the window after the cursor. */
  page: QueryConfig
  /** With a search filter: the page as found through the search index, when the window did not fill it. */
  fallback: QueryConfig | null
  count: QueryConfig | null
}

export const MAX_LIMIT = 200
export const DEFAULT_LIMIT = 50
/** A search reads this many rows of the sort order per row of the page before it asks the search index. */
export const SEARCH_WINDOW = 20

const CURSOR_PATTERN = '^[A-Za-z0-9_-]{1,1000}\\.[A-Za-z0-9_-]{43}$'

/** Query-string properties every list takes: limit, cursor, sort, count. Spread into the route's querystring schema. */
export function pagingQuerySchema (spec: ListSpec, sortDescription?: string) {
  const sorts = Object.keys(spec.sorts).flatMap((s) => [s, `-${s}`])
  return {
    limit: Type.Integer({ minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT, description: `Rows per page (1–${MAX_LIMIT}).` }),
    cursor: Type.Optional(Type.String({ pattern: CURSOR_PATTERN, description: 'Opaque cursor from the `Link: rel="next"` header of the previous page. Valid only with the sort and filters it was made for.' })),
    sort: Type.Optional(Type.Unsafe<string>({
      type: 'string',
      enum: sorts,
      description: sortDescription ?? `Sort order, \`-\` for descending; ties are broken by id. Default \`${spec.defaultSort}\`.`
    })),
    count: Type.Optional(Type.Boolean({ default: false, description: 'Also answer the number of rows matching the filters in `X-Total-Count`.' }))
  }
}

/** OpenAPI response headers of a page. */
export const pageHeaders = {
  Link: { type: 'string', description: 'RFC 8288 link to the next page, `<…?cursor=…>; rel="next"`; absent on the last page.' },
  'X-Total-Count': { type: 'integer', description: 'Rows matching the filters (with `count=true`).' }
}

function invalidCursor (): Error {
  return new errors.InvalidCursor('The cursor is not valid for this list, sort and filters; start again without one')
}

interface Shape {
  /** Unnamed (undefined) for searches planned per request. */
  name: string | undefined
  text: string
  /** Query filter names, in parameter order. */
  filters: string[]
}

type ShapeKind = 'page' | 'window' | 'fallback' | 'count'

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

export function createLister<R extends QueryResultRow> (spec: ListSpec, secretKey: string): Lister<R> {
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

  function encode (query: PageQuery, key: string, id: string): string {
    const payload = Buffer.from(JSON.stringify([key, id])).toString('base64url')
    return `${payload}.${hmac(secretKey, `${scope(query)}\n${payload}`)}`
  }

  function decode (query: PageQuery, cursor: string): [string, string] {
    const dot = cursor.indexOf('.')
    const payload = cursor.slice(0, dot)
    if (dot < 1 || !safeEqual(cursor.slice(dot + 1), hmac(secretKey, `${scope(query)}\n${payload}`))) throw invalidCursor()
    let position: unknown
    try {
      position = JSON.parse(Buffer.from(payload, 'base64url').toString())
    } catch {
      throw invalidCursor()
    }
    // Signed by this service, so well-formed; checked anyway, cheaply.
    if (!Array.isArray(position) || position.length !== 2 || typeof position[0] !== 'string' || typeof position[1] !== 'string') throw invalidCursor()
    return position as [string, string]
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
    if (kind !== 'window') return `SELECT ${spec.columns}, ${key} AS "_k" FROM ${from}${where([...search, ...plain])} ${order} LIMIT $${++n}`
    // The next `window` rows in order (cheap filters applied), then the page among them, and how many rows the window held.
    const window = `$${++n}`
    const limit = `$${++n}`
    return `WITH win AS MATERIALIZED (SELECT *, ${key} AS "_k", ${field.expr} AS "_s" FROM ${spec.from}${where(plain)} ${order} LIMIT ${window})` +
      ' SELECT p.*, c.n AS "_n" FROM (SELECT count(*)::int AS n FROM win) c' +
      ` LEFT JOIN LATERAL (SELECT ${spec.columns}, "_k", "_s" FROM win${where(search)} ORDER BY "_s" ${dir}, ${spec.id} ${dir} LIMIT ${limit}) p ON true` +
      ` ORDER BY p."_s" ${dir}, p.${spec.id} ${dir}`
  }

  function shapeFor (kind: ShapeKind, query: PageQuery, withCursor: boolean): Shape {
    const filters = presentFilters(query)
    const id = `${kind}|${kind === 'count' ? '' : sortOf(query).name}|${withCursor ? 'after' : ''}|${filters.join(',')}`
    let shape = shapes.get(id)
    if (shape === undefined) {
      // Planned per request: a search, except in a window (its plan does not depend on the term) or through the index.
      const perRequest = (kind === 'page' || kind === 'count') && filters.some((f) => spec.filters[f]?.search !== undefined)
      shape = { name: perRequest ? undefined : `${spec.name}_${++statements}`, text: build(kind, query, filters, withCursor), filters }
      shapes.set(id, shape)
    }
    return shape
  }

  function statementsFor (query: PageQuery): ListStatements {
    const position = query.cursor === undefined ? null : decode(query, query.cursor)
    const params = (shape: Shape): unknown[] => shape.filters.map((f) => {
      const filter = spec.filters[f] as FilterField
      return filter.param === undefined ? query[f] : filter.param(query[f])
    })
    const sort = sortOf(query).name.replace(/^-/, '')
    const searching = presentFilters(query).some((f) => spec.filters[f]?.search?.clusters.includes(sort) === true)
    const statement = (kind: ShapeKind, limits: number[]): QueryConfig => {
      const shape = shapeFor(kind, query, position !== null)
      return { name: shape.name, text: shape.text, values: [...params(shape), ...(position ?? []), ...limits] }
    }
    const page = searching ? statement('window', [SEARCH_WINDOW * (query.limit + 1), query.limit + 1]) : statement('page', [query.limit + 1])
    const fallback = searching ? statement('fallback', [query.limit + 1]) : null
    const count = query.count === true ? shapeFor('count', query, false) : null
    return { page, fallback, count: count === null ? null : { name: count.name, text: count.text, values: params(count) } }
  }

  async function rowsOf (db: Queryable, { page, fallback }: ListStatements, query: PageQuery): Promise<Array<R & { _k: string, id: string }>> {
    const { rows } = await db.query<R & { _k: string, id: string, _n?: number }>(page)
    if (fallback === null) return rows
    // A window: a full page, or the end of the list, is the answer; else the window held too few matches.
    const found = rows.filter((r) => r.id !== null)
    if (found.length > query.limit || (rows[0] as { _n: number })._n < SEARCH_WINDOW * (query.limit + 1)) return found
    return (await db.query<R & { _k: string, id: string }>(fallback)).rows
  }

  return {
    statements: statementsFor,
    encode,

    async page (db, query) {
      const statements = statementsFor(query)
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

    nextLink (path, query, cursor) {
      const qs = new URLSearchParams()
      qs.set('limit', String(query.limit))
      if (query.sort !== undefined) qs.set('sort', query.sort)
      for (const f of presentFilters(query)) qs.set(f, String(query[f]))
      if (query.count === true) qs.set('count', 'true')
      qs.set('cursor', cursor)
      return `<${path}?${qs.toString()}>; rel="next"`
    }
  }
}

/** Sets a page's `Link` (next page) and `X-Total-Count` (with count=true) headers. */
export function setPageHeaders (reply: { header: (name: string, value: string) => unknown }, lister: Lister<QueryResultRow>, url: string, query: PageQuery, page: Page<unknown>): void {
  if (page.nextCursor !== null) reply.header('link', lister.nextLink(url.split('?')[0] as string, query, page.nextCursor))
  if (page.total !== null) reply.header('x-total-count', String(page.total))
}
