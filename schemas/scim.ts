import { Type, type TSchema } from '@sinclair/typebox'
import { statusTitle } from './problem.ts'

/** SCIM 2.0 (RFC 7643, RFC 7644) as /scim/v2 shows it: every body is application/scim+json. */

export const SCIM_JSON = 'application/scim+json'

/** The largest SCIM request body (creates, replaces, patches): 1 MiB. */
export const SCIM_BODY_LIMIT = 1024 * 1024

const Str = (description: string) => Type.String({ description })
const Meta = Type.Object({
  resourceType: Str('User or Group.'),
  created: Type.String({ format: 'date-time' }),
  lastModified: Type.String({ format: 'date-time' }),
  location: Str('URL of the resource.'),
  version: Str('Its ETag (also in the ETag header); send it in If-Match.')
}, { additionalProperties: false })

/**
 * A reference to another resource: its id, a display name and `$ref`, its URL. A property named `$ref`
 * cannot be declared (schema tools read it as a reference), so these objects allow it as an extra property;
 * src/scim/resources.ts makes them with exactly these fields.
 */
const Reference = (properties: Record<string, TSchema>) => Type.Object(properties, { additionalProperties: true, description: 'Also `$ref`: the URL of the resource.' })

/** A SCIM User. Only `schemas` and `id` are always there (`attributes` / `excludedAttributes` choose the rest). */
export const ScimUser = Type.Object({
  schemas: Type.Array(Type.String()),
  id: Str('Roster\'s id of the user (a UUID), the same as in /users.'),
  externalId: Type.Optional(Str('The identity provider\'s id of the user (unique).')),
  userName: Type.Optional(Str('Unique case-insensitively, also among emails; the email unless a SCIM client gave another.')),
  name: Type.Optional(Type.Object({ givenName: Type.Optional(Type.String()), familyName: Type.Optional(Type.String()), formatted: Type.Optional(Type.String()) }, { additionalProperties: false })),
  displayName: Type.Optional(Str('The user\'s `name` in /users.')),
  emails: Type.Optional(Type.Array(Type.Object({ value: Type.String(), type: Type.Optional(Type.String()), primary: Type.Optional(Type.Boolean()) }, { additionalProperties: false }), { description: 'The one email of the user (type work, primary).' })),
  active: Type.Optional(Type.Boolean({ description: 'false: deactivated (the user keeps its id and data).' })),
  groups: Type.Optional(Type.Array(Reference({ value: Type.Optional(Type.String()), display: Type.Optional(Type.String()) }), { description: 'Read-only: change memberships through Groups.' })),
  meta: Type.Optional(Meta)
}, { $id: 'ScimUser', additionalProperties: false })

export const ScimGroup = Type.Object({
  schemas: Type.Array(Type.String()),
  id: Str('Roster\'s id of the group (a UUID), the same as in /groups.'),
  externalId: Type.Optional(Str('The identity provider\'s id of the group (unique).')),
  displayName: Type.Optional(Str('Unique case-insensitively.')),
  members: Type.Optional(Type.Array(Reference({ value: Type.Optional(Type.String()), display: Type.Optional(Type.String()), type: Type.Optional(Type.String()) }))),
  meta: Type.Optional(Meta)
}, { $id: 'ScimGroup', additionalProperties: false })

const listOf = (item: TSchema) => Type.Object({
  schemas: Type.Array(Type.String()),
  totalResults: Type.Integer({ minimum: 0 }),
  startIndex: Type.Integer({ minimum: 1 }),
  itemsPerPage: Type.Integer({ minimum: 0 }),
  Resources: Type.Array(item)
}, { additionalProperties: false })

/** RFC 7644 §3.12. */
export const ScimError = Type.Object({
  schemas: Type.Array(Type.String()),
  status: Str('The HTTP status, as a string.'),
  scimType: Type.Optional(Type.String({ enum: ['invalidFilter', 'invalidSyntax', 'invalidPath', 'invalidValue', 'mutability', 'uniqueness', 'noTarget', 'tooMany', 'invalidVers'] })),
  detail: Type.String()
}, { $id: 'ScimError', additionalProperties: false, description: 'A SCIM error (RFC 7644 §3.12), application/scim+json.' })

const Supported = Type.Object({ supported: Type.Boolean() }, { additionalProperties: false })
export const ServiceProviderConfig = Type.Object({
  schemas: Type.Array(Type.String()),
  documentationUri: Type.String(),
  patch: Supported,
  bulk: Type.Object({ supported: Type.Boolean(), maxOperations: Type.Integer(), maxPayloadSize: Type.Integer() }, { additionalProperties: false }),
  filter: Type.Object({ supported: Type.Boolean(), maxResults: Type.Integer() }, { additionalProperties: false }),
  changePassword: Supported,
  sort: Supported,
  etag: Supported,
  authenticationSchemes: Type.Array(Type.Object({ type: Type.String(), name: Type.String(), description: Type.String(), primary: Type.Boolean() }, { additionalProperties: false })),
  meta: Type.Object({ resourceType: Type.String(), location: Type.String() }, { additionalProperties: false })
}, { additionalProperties: false })

export const ResourceType = Type.Object({
  schemas: Type.Array(Type.String()),
  id: Type.String(),
  name: Type.String(),
  endpoint: Type.String(),
  description: Type.String(),
  schema: Type.String(),
  schemaExtensions: Type.Array(Type.Object({ schema: Type.String(), required: Type.Boolean() }, { additionalProperties: false })),
  meta: Type.Object({ resourceType: Type.String(), location: Type.String() }, { additionalProperties: false })
}, { $id: 'ScimResourceType', additionalProperties: false })

const attributeFields = {
  name: Type.String(),
  type: Type.String(),
  multiValued: Type.Boolean(),
  description: Type.String(),
  required: Type.Boolean(),
  caseExact: Type.Boolean(),
  mutability: Type.String(),
  returned: Type.String(),
  uniqueness: Type.String(),
  canonicalValues: Type.Optional(Type.Array(Type.String())),
  referenceTypes: Type.Optional(Type.Array(Type.String()))
}
const Attribute = Type.Object({
  ...attributeFields,
  subAttributes: Type.Optional(Type.Array(Type.Object(attributeFields, { additionalProperties: false })))
}, { additionalProperties: false })
export const SchemaResource = Type.Object({
  schemas: Type.Array(Type.String()),
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  attributes: Type.Array(Attribute),
  meta: Type.Object({ resourceType: Type.String(), location: Type.String() }, { additionalProperties: false })
}, { $id: 'ScimSchema', additionalProperties: false })

/** SCIM request bodies are read by src/scim/resources.ts (case-insensitive names, unknown attributes ignored): any JSON object here. */
export const ScimBody = Type.Object({}, { additionalProperties: true, description: 'A SCIM resource or PatchOp (application/scim+json or application/json).' })

/** A path segment naming a resource, resource type or schema: letters, digits and `:._-`, with a letter or digit (`.` and `..` name no resource). */
export const ScimId = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9:._-]*[A-Za-z0-9][A-Za-z0-9:._-]*$' }) }, { additionalProperties: false })

export const ScimListQuery = Type.Object({
  filter: Type.Optional(Type.String({ maxLength: 4096, description: 'RFC 7644 §3.4.2.2 filter, e.g. `userName eq "ann@example.com"`.' })),
  startIndex: Type.Optional(Type.Integer({ minimum: -2147483648, maximum: 2147483647, description: '1-based index of the first result (default 1; below 1 means 1).' })),
  count: Type.Optional(Type.Integer({ minimum: -2147483648, maximum: 2147483647, description: 'Results per page (default 100, at most 200; 0: totalResults only; below 0 means 0).' })),
  sortBy: Type.Optional(Type.String({ maxLength: 200 })),
  sortOrder: Type.Optional(Type.Union([Type.Literal('ascending'), Type.Literal('descending')])),
  attributes: Type.Optional(Type.String({ maxLength: 1000, description: 'Comma-separated attributes to answer (id and schemas always).' })),
  excludedAttributes: Type.Optional(Type.String({ maxLength: 1000, description: 'Comma-separated attributes to leave out.' }))
}, { additionalProperties: false })

export const ScimProjection = Type.Pick(ScimListQuery, ['attributes', 'excludedAttributes'], { additionalProperties: false })

export const ScimWriteHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({ maxLength: 2048, description: 'meta.version (the ETag) of the resource: the change applies only at that version (else 412).' }))
})

function scim (description: string, schema: TSchema, headers: Record<string, unknown> = {}) {
  return { description, headers, content: { [SCIM_JSON]: { schema } } }
}

const ETag = { type: 'string', description: 'meta.version of the resource.' }

export const scimResponses = {
  user: scim('The user', Type.Ref(ScimUser), { ETag }),
  userCreated: scim('Created', Type.Ref(ScimUser), { ETag, Location: { type: 'string' } }),
  users: scim('A page of users', listOf(Type.Ref(ScimUser))),
  group: scim('The group', Type.Ref(ScimGroup), { ETag }),
  groupCreated: scim('Created', Type.Ref(ScimGroup), { ETag, Location: { type: 'string' } }),
  groups: scim('A page of groups', listOf(Type.Ref(ScimGroup))),
  serviceProviderConfig: scim('What this service provider supports', ServiceProviderConfig),
  resourceTypes: scim('The resource types', listOf(Type.Ref(ResourceType))),
  resourceType: scim('A resource type', Type.Ref(ResourceType)),
  schemas: scim('The schemas', listOf(Type.Ref(SchemaResource))),
  schema: scim('A schema', Type.Ref(SchemaResource)),
  noContent: { type: 'null', description: 'Done', headers: { ETag } }
}

/**
 * SCIM error responses for a route: the statuses given, plus those any
 * /scim/v2 route may answer (400, 401, 403, 413, 414, 415, 500, 503). Spread
 * into `response`; they override the problem+json entries the app documents
 * for every route (src/infra/problem.ts).
 */
export function scimErrors (...statuses: number[]): Record<number, ReturnType<typeof scim>> {
  const out: Record<number, ReturnType<typeof scim>> = {}
  for (const status of new Set([...statuses, 400, 401, 403, 413, 414, 415, 500, 503])) {
    out[status] = scim(statusTitle(status), Type.Ref(ScimError), status === 503 ? { 'Retry-After': { type: 'integer', minimum: 0 } } : {})
  }
  return out
}
