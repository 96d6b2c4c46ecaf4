import { errors } from './errors.ts'

/**
 * Strong entity tags of versioned rows: `"<id>.<version>"`. The version is
 * bumped by every update, so the tag changes on every change.
 */
export function etag (row: { id: string, version: number }): string {
  return `"${row.id}.${row.version}"`
}

/** The tags of an If-Match / If-None-Match list, or '*'. Weak tags keep their `W/` prefix. */
function tags (header: string): string[] | '*' {
  if (header.trim() === '*') return '*'
  return header.match(/(?:W\/)?"[^"]*"/g) ?? []
}

/** If-None-Match (weak comparison, RFC 9110 13.1.2): true when the representation the client has is current. */
export function noneMatchFails (header: string | undefined, current: string): boolean {
  if (header === undefined) return false
  const list = tags(header)
  return list === '*' || list.some((t) => (t.startsWith('W/') ? t.slice(2) : t) === current)
}

/**
 * The versions of row `id` an If-Match header accepts (strong comparison, RFC
 * 9110 13.1.1): null when any version will do (no header, or `*`), else the
 * versions named, possibly none (then only a 412 can follow).
 */
export function matchingVersions (header: string | undefined, id: string): number[] | null {
  if (header === undefined) return null
  const list = tags(header)
  if (list === '*') return null
  const versions: number[] = []
  const prefix = `"${id.toLowerCase()}.`
  for (const t of list) {
    if (!t.startsWith(prefix)) continue
    const digits = t.slice(prefix.length, -1)
    if (/^\d{1,9}$/.test(digits)) versions.push(Number(digits))
  }
  return versions
}

/**
 * The versions of row `id` a write's If-Match accepts (null: any); with
 * REQUIRE_IF_MATCH=true (`required`) a missing If-Match is a 428 naming `what` to GET.
 */
export function writePreconditions (header: string | undefined, id: string, required: boolean, what: string): number[] | null {
  if (header === undefined && required) {
    throw new errors.PreconditionRequired(`If-Match is required: send the ETag of the ${what} (from GET) to change or delete it`)
  }
  return matchingVersions(header, id)
}
