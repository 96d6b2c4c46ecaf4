import { errors } from '../errors.ts'
import { hmac, safeEqual } from '../crypto.ts'

/**
 * List cursors: the last row's sort key and id, signed with an HMAC (SECRET_KEY)
 * over the list's scope (its name, the sort and the filters with their values).
 * A cursor that was tampered with, signed with another key, or made for another
 * list, sort or filter set is refused (400 ROSTER_INVALID_CURSOR).
 */

function invalidCursor (): Error {
  return new errors.InvalidCursor('The cursor is not valid for this list, sort and filters; start again without one')
}

export function signCursor (secretKey: string, scope: string, key: string, id: string): string {
  const payload = Buffer.from(JSON.stringify([key, id])).toString('base64url')
  return `${payload}.${hmac(secretKey, `${scope}\n${payload}`)}`
}

/** The position `[key, id]` a cursor signed for `scope` holds; throws ROSTER_INVALID_CURSOR otherwise. */
export function verifyCursor (secretKey: string, scope: string, cursor: string): [string, string] {
  const dot = cursor.indexOf('.')
  const payload = cursor.slice(0, dot)
  if (dot < 1 || !safeEqual(cursor.slice(dot + 1), hmac(secretKey, `${scope}\n${payload}`))) throw invalidCursor()
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
