import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { ASCII_TEXT, nullable, PRINTABLE, Timestamp, Uuid } from './common.ts'
import { pageHeaders, pageQuery } from './paging.ts'
import { GroupRef } from './groups.ts'

/**
 * Idempotency-Key header values: 1–255 characters of letters, digits and
 * `. _ : ~ + / = -` (UUIDs, ULIDs, base64url), optionally in double quotes
 * (the structured-field string form of the IETF draft).
 */
export const IDEMPOTENCY_KEY_PATTERN = '^(?:[A-Za-z0-9._:~+/=-]{1,255}|"[A-Za-z0-9._:~+/=-]{1,255}")$'

const email = { type: 'string', format: 'email', maxLength: 254, description: 'Email address, unique case-insensitively.' }
const name = { type: 'string', maxLength: 100, pattern: PRINTABLE, description: 'Display name (optional, at most 100 characters).' }

/** A user as the API shows it. */
export const User = Type.Object({
  id: Uuid,
  email: Type.Unsafe<string>(email),
  name: nullable<string>(name),
  active: Type.Boolean(),
  createdAt: Timestamp(),
  updatedAt: Timestamp(),
  createdBy: nullable<string>({ type: 'string', format: 'uuid', description: 'The admin who created the user; null once that admin is deleted.' })
}, { $id: 'User', additionalProperties: false, description: 'A user of the organisation.' })
/** The SCIM attributes of a user (SCIM only: REST /users does not show them); null when not set. */
export interface ScimUserFields {
  /** SCIM userName when it is not the email. */
  userName: string | null
  externalId: string | null
  givenName: string | null
  familyName: string | null
}
/** A user as the service reads it: what the API shows, plus `version`, which makes the ETag, and the SCIM attributes. */
export type UserRow = Static<typeof User> & ScimUserFields & { version: number }

export const UserCreate = Type.Object({
  email: Type.Unsafe<string>(email),
  name: Type.Optional(nullable<string>(name)),
  active: Type.Optional(Type.Boolean({ description: 'Default true.' }))
}, { additionalProperties: false })
/** A user to create: REST's fields, and SCIM's (src/scim). */
export type NewUser = Static<typeof UserCreate> & Partial<ScimUserFields>

export const UserPatch = Type.Object({
  email: Type.Optional(Type.Unsafe<string>(email)),
  name: Type.Optional(nullable<string>(name)),
  active: Type.Optional(Type.Boolean())
}, { additionalProperties: false, minProperties: 1, description: 'The fields to change (at least one); `name: null` removes the name.' })
/** A change of a user: REST's fields, and SCIM's (src/scim); null removes a value. */
export type UserPatchBody = Static<typeof UserPatch> & Partial<ScimUserFields>

export const UserId = Type.Object({ id: Uuid }, { additionalProperties: false })

/** GET /users sorts; each has its `(key, id)` index (db/schema/users.ts). */
export const USER_SORTS = ['createdAt', 'email', 'name'] as const

export const UserListQuery = Type.Object({
  ...pageQuery(USER_SORTS, 'createdAt'),
  email: Type.Optional(Type.String({ maxLength: 254, pattern: PRINTABLE, description: 'Exact email, case-insensitive.' })),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: PRINTABLE, description: 'Substring of the email or the name, case-insensitive.' })),
  active: Type.Optional(Type.Boolean()),
  group: Type.Optional(Type.String({ format: 'uuid', description: 'Only the members of this group.' })),
  createdAfter: Type.Optional(Type.String({ format: 'date-time', description: 'Created at or after this time.' })),
  createdBefore: Type.Optional(Type.String({ format: 'date-time', description: 'Created before this time.' }))
}, { additionalProperties: false })
export type UserListParams = Static<typeof UserListQuery>

const tag = { type: 'string', maxLength: 2048, pattern: ASCII_TEXT }
export const ReadHeaders = Type.Object({
  'if-none-match': Type.Optional(Type.Unsafe<string>({ ...tag, description: 'ETag(s) of a copy you hold: 304 when it is still current.' }))
})
export const WriteHeaders = Type.Object({
  'if-match': Type.Optional(Type.Unsafe<string>({ ...tag, description: 'ETag from GET: the change applies only if the user is still at that version (else 412). Required when REQUIRE_IF_MATCH=true (else 428).' }))
})
export const CreateHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    pattern: IDEMPOTENCY_KEY_PATTERN,
    description: 'Makes retries safe: the same key and body within 24 h replay the first response; the same key with another body is a 422. 1–255 characters of letters, digits and `._:~+/=-`, optionally double-quoted.'
  }))
})

const ETag = { type: 'string', description: 'Strong entity tag of this version of the user.' }

/** Response entries with their headers. */
function json (description: string, schema: TSchema, headers: Record<string, unknown> = {}) {
  return { description, headers, content: { 'application/json': { schema } } }
}

/** GET /users/{id}: the user and the groups they are in. */
export const UserWithGroups = Type.Object({
  ...User.properties,
  groups: Type.Array(GroupRef, { description: 'The groups the user is in, by name.' })
}, { additionalProperties: false, description: 'A user of the organisation, with their groups.' })

export const responses = {
  user: json('The user', Type.Ref(User), { ETag }),
  userWithGroups: json('The user, with their groups', UserWithGroups, { ETag }),
  created: json('Created', Type.Ref(User), {
    Location: { type: 'string', description: 'URL of the new user.' },
    ETag,
    'Idempotent-Replayed': { type: 'string', enum: ['true'], description: 'Present when this is the stored response to an earlier request with the same Idempotency-Key.' }
  }),
  deleted: json('The deleted user', Type.Ref(User)),
  page: json('A page of users, in the requested order', Type.Array(Type.Ref(User)), pageHeaders),
  notModified: { type: 'null', description: 'Not modified: the ETag in If-None-Match is current', headers: { ETag } },
  noContent: { type: 'null', description: 'Deleted' }
}

/** Rows one POST /users/import takes at most. */
export const IMPORT_MAX_ROWS = 100_000
/** Invalid and duplicate rows listed in an import report at most (all are counted). */
export const IMPORT_REPORT_LIMIT = 1000
/** The media types of import and export. */
export const NDJSON = 'application/x-ndjson'
export const CSV = 'text/csv'

/**
 * A row of an import: a user to create (the fields of POST /users); the
 * read-only fields of an export (id, createdAt, updatedAt, createdBy) are
 * accepted and ignored, so an export imports as it is.
 */
export const UserImportRow = Type.Object({
  ...UserCreate.properties,
  id: Type.Optional(Type.String({ maxLength: 64 })),
  createdAt: Type.Optional(Type.String({ maxLength: 64 })),
  updatedAt: Type.Optional(Type.String({ maxLength: 64 })),
  createdBy: Type.Optional(nullable<string>({ type: 'string', maxLength: 64 }))
}, { additionalProperties: false })
export type UserImportRowBody = Static<typeof UserImportRow>

export const ImportQuery = Type.Object({
  dryRun: Type.Boolean({ default: false, description: 'Validate and report only: nothing is created.' })
}, { additionalProperties: false })

const Issue = Type.Object({ path: Type.String({ description: 'JSON pointer into the row, e.g. /email.' }), message: Type.String() }, { additionalProperties: false })

export const ImportReport = Type.Object({
  dryRun: Type.Boolean(),
  rows: Type.Integer({ description: 'Data rows read (blank lines and the CSV header not counted).' }),
  created: Type.Integer({ description: 'Users created (with dryRun: that would be created).' }),
  duplicates: Type.Integer({ description: 'Rows skipped: their email (case-insensitively) belongs to an existing user or an earlier row.' }),
  invalid: Type.Integer({ description: 'Rows skipped as invalid.' }),
  skipped: Type.Array(Type.Object({ line: Type.Integer(), email: Type.String() }, { additionalProperties: false }), { description: `The duplicate rows, by line number (the first ${IMPORT_REPORT_LIMIT}).` }),
  errors: Type.Array(Type.Object({ line: Type.Integer(), errors: Type.Array(Issue) }, { additionalProperties: false }), { description: `The invalid rows, by line number, with what is wrong (the first ${IMPORT_REPORT_LIMIT}).` })
}, { additionalProperties: false, description: 'What an import did (or, with dryRun, would do).' })
export type ImportReportView = Static<typeof ImportReport>
