import { errors, invalidField } from './errors.ts'

/** The form media type: only routes that opt in take it (`config: { formBody: true }`). */
export const FORM = 'application/x-www-form-urlencoded'

/** `charset` of a Content-Type header, lower case, without quotes; undefined when there is none. */
function charsetOf (contentType: string): string | undefined {
  return /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(contentType)?.[1]?.toLowerCase()
}

/** A 415 unless the body is UTF-8: the `charset` parameter, when given, must say so. */
export function requireUtf8 (contentType: string): void {
  const charset = charsetOf(contentType)
  if (charset !== undefined && charset !== 'utf-8') {
    throw new errors.UnsupportedMediaType(`Bodies are UTF-8: charset=${charset.slice(0, 40)} is not accepted (send charset=utf-8 or none)`)
  }
}

/** A UTF-16 code unit of a surrogate pair without its other half: text that no UTF-8 (nor PostgreSQL) can hold. */
const LONE_SURROGATE = /[\ud800-\udfff]/u

/** A JSON pointer segment. */
const segment = (key: string): string => `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`

/**
 * The pointer (within the body) of the first property name or string of a
 * parsed body that is not well-formed Unicode (`"\ud800"` parses to a lone
 * surrogate), or undefined. Iterative: a body may nest thousands deep.
 */
export function illFormedPath (body: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[body, '']]
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [value, path] = item
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) return path
    } else if (typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) {
        if (LONE_SURROGATE.test(k)) return path + segment(k)
        stack.push([v, path + segment(k)])
      }
    }
  }
  return undefined
}

/** The 400 for a body holding a lone surrogate at `path`, shaped like a validation failure naming the field. */
export function illFormedError (path: string): Error {
  return invalidField(path.slice(1), 'must be well-formed Unicode text (it holds a lone UTF-16 surrogate)')
}

/** An urlencoded form as an object of strings (the last value of a repeated field wins; `__proto__` is a field like any other). */
export function parseForm (text: string): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(text))
}
