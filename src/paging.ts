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
 * trip with no planning; shapes listed in `customPlanFilters` run unnamed, so
 * PostgreSQL plans them for each request's values (a substring search's best
 * plan depends on how many rows match).
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
  /** Filters whose queries are planned for each request's values (unnamed statements). */
  customPlanFilters?: string[]
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
  page: QueryConfig
  count: QueryConfig | null
}

export const MAX_LIMIT = 200
export const DEFAULT_LIMIT = 50

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
  name: string | undefined
  text: string
  /** Query filter names, in parameter order. */
  filters: string[]
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

export function createLister<R extends QueryResultRow> (spec: ListSpec, secretKey: string): Lister<R> {
  const filterNames = Object.keys(spec.filters).sort()
  const customPlan = new Set(spec.customPlanFilters ?? [])
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

  function shapeFor (query: PageQuery, withCursor: boolean, counting: boolean): Shape {
    const sort = sortOf(query)
    const filters = presentFilters(query)
    const id = `${counting ? 'count' : `${sort.name}${withCursor ? '>' : ''}`}|${filters.join(',')}`
    let shape = shapes.get(id)
    if (shape === undefined) {
      const conditions: string[] = []
      let n = 0
      for (const f of filters) conditions.push((spec.filters[f] as FilterField).sql(`$${++n}`))
      let text: string
      if (counting) {
        text = `SELECT count(*)::int AS total FROM ${spec.from}${conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : ''}`
      } else {
        const { field, descending } = sort
        if (withCursor) conditions.push(`(${field.expr}, ${spec.id}) ${descending ? '<' : '>'} ($${++n}::${field.type}, $${++n}::uuid)`)
        const dir = descending ? 'DESC' : 'ASC'
        text = `SELECT ${spec.columns}, ${field.key ?? field.expr} AS "_k" FROM ${spec.from}` +
          `${conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : ''}` +
          ` ORDER BY ${field.expr} ${dir}, ${spec.id} ${dir} LIMIT $${++n}`
      }
      const named = !filters.some((f) => customPlan.has(f))
      shape = { name: named ? `${spec.name}_${++statements}` : undefined, text, filters }
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
    const page = shapeFor(query, position !== null, false)
    const pageValues = [...params(page), ...(position ?? []), query.limit + 1]
    const count = query.count === true ? shapeFor(query, false, true) : null
    return {
      page: { name: page.name, text: page.text, values: pageValues },
      count: count === null ? null : { name: count.name, text: count.text, values: params(count) }
    }
  }

  return {
    statements: statementsFor,
    encode,

    async page (db, query) {
      const { page, count } = statementsFor(query)
      const [result, counted] = await Promise.all([
        db.query<R & { _k: string, id: string }>(page),
        count === null ? null : db.query<{ total: number }>(count)
      ])
      const rows = result.rows
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
