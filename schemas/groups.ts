import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { nullable, PRINTABLE, Timestamp, Uuid } from './common.ts'
import { pageHeaders, pageQuery } from './paging.ts'

const displayName = { type: 'string', minLength: 1, maxLength: 200, pattern: PRINTABLE, description: 'The group\'s name, unique case-insensitively (1–200 characters).' }
const description = { type: 'string', maxLength: 1000, pattern: PRINTABLE, description: 'What the group is for (optional, at most 1000 characters, no control characters).' }

/** A group as the API shows it (its members: GET /groups/{id}/members). */
export const Group = Type.Object({
  id: Uuid,
  displayName: Type.Unsafe<string>(displayName),
  description: nullable<string>(description),
  createdAt: Timestamp(),
  updatedAt: Timestamp(),
  createdBy: nullable<string>({ type: 'string', format: 'uuid', description: 'The admin who created the group; null when an API client (or SCIM) created it, or once that admin is deleted.' })
}, { $id: 'Group', additionalProperties: false, description: 'A group of users.' })
/** A group as the service reads it: what the API shows, plus `version` (the ETag) and the SCIM `externalId`. */
export type GroupRow = Static<typeof Group> & { version: number, externalId: string | null }

export const GroupCreate = Type.Object({
  displayName: Type.Unsafe<string>(displayName),
  description: Type.Optional(nullable<string>(description))
}, { additionalProperties: false })
export type NewGroup = Static<typeof GroupCreate> & { externalId?: string | null }

export const GroupPatch = Type.Object({
  displayName: Type.Optional(Type.Unsafe<string>(displayName)),
  description: Type.Optional(nullable<string>(description))
}, { additionalProperties: false, minProperties: 1, description: 'The fields to change (at least one); `description: null` removes the description.' })
export type GroupPatchBody = Static<typeof GroupPatch> & { externalId?: string | null }

export const GroupId = Type.Object({ id: Uuid }, { additionalProperties: false })
export const MemberId = Type.Object({ id: Uuid, userId: Uuid }, { additionalProperties: false })

/** GET /groups sorts; each has its `(key, id)` index (db/schema/groups.ts). */
export const GROUP_SORTS = ['createdAt', 'displayName'] as const

export const GroupListQuery = Type.Object({
  ...pageQuery(GROUP_SORTS, 'createdAt'),
  displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: PRINTABLE, description: 'Exact display name, case-insensitive.' }))
}, { additionalProperties: false })
export type GroupListParams = Static<typeof GroupListQuery>

/** A group a user is in, as GET /users/{id} lists it. */
export const GroupRef = Type.Object({
  id: Uuid,
  displayName: Type.String()
}, { additionalProperties: false })
export type GroupRefRow = Static<typeof GroupRef>

const ETag = { type: 'string', description: 'Strong entity tag of this version of the group.' }

function json (description: string, schema: TSchema, headers: Record<string, unknown> = {}) {
  return { description, headers, content: { 'application/json': { schema } } }
}

export const groupResponses = {
  group: json('The group', Type.Ref(Group), { ETag }),
  created: json('Created', Type.Ref(Group), { Location: { type: 'string', description: 'URL of the new group.' }, ETag }),
  page: json('A page of groups, in the requested order', Type.Array(Type.Ref(Group)), pageHeaders),
  notModified: { type: 'null', description: 'Not modified: the ETag in If-None-Match is current', headers: { ETag } },
  noContent: { type: 'null', description: 'Done' }
}
