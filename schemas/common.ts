import { Type } from '@sinclair/typebox'

/** Shared pieces of every domain's schemas. */

export const Uuid = Type.String({ format: 'uuid' })

/**
 * THE timestamp: an RFC 3339 string on the wire and in code (formatted by
 * PostgreSQL, src/infra/sql.ts), UTC with milliseconds.
 */
export const Timestamp = (description?: string) => Type.String({ format: 'date-time', ...(description === undefined ? {} : { description }) })

/** A schema that also allows null: `nullable<string>({ type: 'string', format: 'uuid' })`. */
export const nullable = <T>(schema: Record<string, unknown>) => Type.Unsafe<T | null>({ ...schema, type: [schema.type, 'null'] })

/** No control characters (NUL is not even storable in PostgreSQL text). */
export const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$'

/** Marks a route as needing the access token in the OpenAPI document (Swagger UI's "Authorize"). */
export const bearer = [{ bearerAuth: [] }]
