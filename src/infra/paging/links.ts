import type { PageQuery } from './statements.ts'

/** The `Link` header value pointing at the next page: the same query (limit, sort, filters, count) with the cursor. */
export function nextLink (path: string, query: PageQuery, filters: string[], cursor: string): string {
  const qs = new URLSearchParams()
  qs.set('limit', String(query.limit))
  if (query.sort !== undefined) qs.set('sort', query.sort)
  for (const f of filters) qs.set(f, String(query[f]))
  if (query.count === true) qs.set('count', 'true')
  qs.set('cursor', cursor)
  return `<${path}?${qs.toString()}>; rel="next"`
}

/** Sets a page's `Link` (next page) and `X-Total-Count` (with count=true) headers. */
export function setPageHeaders (reply: { header: (name: string, value: string) => unknown }, lister: { nextLink: (path: string, query: PageQuery, cursor: string) => string }, url: string, query: PageQuery, page: { nextCursor: string | null, total: number | null }): void {
  if (page.nextCursor !== null) reply.header('link', lister.nextLink(url.split('?')[0] as string, query, page.nextCursor))
  if (page.total !== null) reply.header('x-total-count', String(page.total))
}
