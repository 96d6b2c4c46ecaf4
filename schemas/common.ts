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

/**
 * THE pattern of free text people read (names, search terms): no control
 * characters, C0, DEL or C1 (NUL is not even storable in PostgreSQL text); no
 * bidirectional formatting (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069),
 * which can make a name display as another; no invisible characters (zero-width
 * space U+200B, U+2060–U+2064, the deprecated U+206A–U+206F, BOM U+FEFF,
 * interlinear annotations U+FFF9–U+FFFB, line and paragraph separators
 * U+2028/9, U+180E). The zero-width (non-)joiners U+200C/D stay allowed: Persian
 * and Indic scripts and emoji sequences need them. Lone surrogates never get this
 * far (src/infra/body.ts refuses them in every JSON body).
 */
export const PRINTABLE = '^[^\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u180e\\u200b\\u200e\\u200f\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb]*$'

/** Header values that are plain ASCII text (entity tags): visible characters, spaces and tabs. */
export const ASCII_TEXT = '^[\\t\\u0020-\\u007e]*$'

/** Marks a route as needing the access token in the OpenAPI document (Swagger UI's "Authorize"). */
export const bearer = [{ bearerAuth: [] }]
