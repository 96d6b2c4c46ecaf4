import { Type } from '@sinclair/typebox'

export const MAX_LIMIT = 200
export const DEFAULT_LIMIT = 50

/** A list cursor (src/infra/paging/cursor.ts): base64url payload, a dot, a base64url HMAC-SHA256. */
export const CURSOR_PATTERN = '^[A-Za-z0-9_-]{1,1000}\\.[A-Za-z0-9_-]{43}$'

/**
 * Query-string properties every list takes: limit, cursor, sort, count. Spread
 * into the route's querystring schema. `sorts` names the sort fields (each also
 * descending with `-`); `defaultSort` is the one used when none is asked for.
 */
export function pageQuery (sorts: readonly string[], defaultSort: string) {
  return {
    limit: Type.Integer({ minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT, description: `Rows per page (1–${MAX_LIMIT}).` }),
    cursor: Type.Optional(Type.String({ pattern: CURSOR_PATTERN, description: 'Opaque cursor from the `Link: rel="next"` header of the previous page. Valid only with the sort and filters it was made for.' })),
    sort: Type.Optional(Type.Unsafe<string>({
      type: 'string',
      enum: sorts.flatMap((s) => [s, `-${s}`]),
      description: `Sort order, \`-\` for descending; ties are broken by id. Default \`${defaultSort}\`.`
    })),
    count: Type.Optional(Type.Boolean({ default: false, description: 'Also answer the number of rows matching the filters in `X-Total-Count`.' }))
  }
}

/** OpenAPI response headers of a page. */
export const pageHeaders = {
  Link: { type: 'string', description: 'RFC 8288 link to the next page, `<…?cursor=…>; rel="next"`; absent on the last page.' },
  'X-Total-Count': { type: 'integer', description: 'Rows matching the filters (with `count=true`).' }
}
