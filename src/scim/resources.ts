import { PRINTABLE } from '../../schemas/common.ts'
import type { GroupRow } from '../../schemas/groups.ts'
import type { NewUser, UserPatchBody, UserRow } from '../../schemas/users.ts'
import { isEmail } from '../infra/email.ts'
import { etag } from '../infra/etag.ts'
import type { MemberRow } from '../groups/repository.ts'
import type { GroupState } from '../groups/service.ts'
import { scimError } from './errors.ts'
import { parsePatchPath, splitAttrPath, type Filter, type PatchPath } from './filter.ts'

/**
 * SCIM resources (RFC 7643) and their changes: Roster's users and groups as
 * SCIM User and Group, request bodies (create, replace) and PATCH operations
 * (RFC 7644 §3.5.2) turned into the changes the users and groups services make.
 * Attribute names are matched case-insensitively, with or without the core
 * schema's URN. Attributes Roster does not keep (phoneNumbers, addresses,
 * title, the enterprise extension, password, …) are ignored, as identity
 * providers send many of them.
 */

export const SCHEMAS = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  list: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  patch: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  error: 'urn:ietf:params:scim:api:messages:2.0:Error'
} as const

export interface ScimUser {
  schemas: string[]
  id: string
  externalId?: string
  userName: string
  name?: { givenName?: string, familyName?: string, formatted?: string }
  displayName?: string
  emails: Array<{ value: string, type: 'work', primary: true }>
  active: boolean
  groups: Array<{ value: string, display: string, $ref: string }>
  meta: Meta
}

export interface ScimGroup {
  schemas: string[]
  id: string
  externalId?: string
  displayName: string
  members?: Array<{ value: string, display: string, $ref: string, type: 'User' }>
  meta: Meta
}

interface Meta { resourceType: 'User' | 'Group', created: string, lastModified: string, location: string, version: string }

/** A user as SCIM shows it; `groups` its groups by name. */
export function toScimUser (base: string, user: UserRow, groups: Array<{ id: string, displayName: string }>): ScimUser {
  const name: ScimUser['name'] = {}
  if (user.givenName !== null) name.givenName = user.givenName
  if (user.familyName !== null) name.familyName = user.familyName
  if (user.givenName !== null || user.familyName !== null) name.formatted = [user.givenName, user.familyName].filter((n) => n !== null).join(' ')
  return {
    schemas: [SCHEMAS.user],
    id: user.id,
    ...(user.externalId === null ? {} : { externalId: user.externalId }),
    userName: user.userName ?? user.email,
    ...(name.formatted === undefined ? {} : { name }),
    ...(user.name === null ? {} : { displayName: user.name }),
    emails: [{ value: user.email, type: 'work', primary: true }],
    active: user.active,
    groups: groups.map((g) => ({ value: g.id, display: g.displayName, $ref: `${base}/Groups/${g.id}` })),
    meta: { resourceType: 'User', created: user.createdAt, lastModified: user.updatedAt, location: `${base}/Users/${user.id}`, version: etag(user) }
  }
}

/** A group as SCIM shows it; `members` null when they were excluded (not read). */
export function toScimGroup (base: string, group: GroupRow, members: MemberRow[] | null): ScimGroup {
  return {
    schemas: [SCHEMAS.group],
    id: group.id,
    ...(group.externalId === null ? {} : { externalId: group.externalId }),
    displayName: group.displayName,
    ...(members === null ? {} : { members: members.map((m) => ({ value: m.userId, display: m.display, $ref: `${base}/Users/${m.userId}`, type: 'User' as const })) }),
    meta: { resourceType: 'Group', created: group.createdAt, lastModified: group.updatedAt, location: `${base}/Groups/${group.id}`, version: etag(group) }
  }
}

// ------------------------------------------------------------ values

const invalidValue = (detail: string): Error => scimError('invalidValue', detail)
// Control characters, as the REST schemas refuse them (PRINTABLE, schemas/common.ts); NUL cannot even be stored.
const CONTROL = new RegExp(PRINTABLE)

type Json = unknown

function text (name: string, value: Json, max: number, { nullable = true, min = 1 } = {}): string | null {
  if (value === null && nullable) return null
  if (typeof value !== 'string' || value.length < min || value.length > max || !CONTROL.test(value)) {
    throw invalidValue(`${name} must be a string of ${min}–${max} characters without control characters${nullable ? ', or null' : ''}`)
  }
  return value
}

/** A boolean, or the strings "True"/"False" in any case (Microsoft Entra ID sends `"active": "False"`). */
function bool (name: string, value: Json): boolean {
  if (typeof value === 'boolean') return value
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true'
  throw invalidValue(`${name} must be true or false`)
}

function email (name: string, value: Json): string {
  const v = text(name, value, 254, { nullable: false }) as string
  if (!isEmail(v)) throw invalidValue(`${name} must be an email address`)
  return v
}

const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The email a SCIM `emails` array names: the primary one, else the work one, else the first. */
function emailOf (value: Json): string | null {
  if (value === null) return null
  if (!Array.isArray(value) || !value.every(isObject)) throw invalidValue('emails must be an array of {value, type, primary}')
  const chosen = value.find((e) => e.primary === true || e.primary === 'True' || e.primary === 'true') ?? value.find((e) => typeof e.type === 'string' && e.type.toLowerCase() === 'work') ?? value[0]
  return chosen === undefined ? null : email('emails.value', chosen.value)
}

/** The keys of a resource body by lowercased attribute name; the core schema's URN-qualified keys and objects unfolded, extensions dropped. */
function attributesOf (body: Record<string, Json>, coreUrn: string): Map<string, Json> {
  const out = new Map<string, Json>()
  for (const [key, value] of Object.entries(body)) {
    const lower = key.toLowerCase()
    if (lower === coreUrn.toLowerCase()) {
      if (isObject(value)) for (const [k, v] of attributesOf(value, coreUrn)) out.set(k, v)
      continue
    }
    if (lower.includes(':')) {
      const { urn, attr, sub } = splitAttrPath(key)
      if (urn !== coreUrn.toLowerCase()) continue
      if (sub === null) out.set(attr, value)
      else {
        // `…:User:name.givenName` is the sub-attribute of the core attribute `name`.
        const parent = out.get(attr)
        out.set(attr, { ...(isObject(parent) ? parent : {}), [sub]: value })
      }
      continue
    }
    out.set(lower, value)
  }
  return out
}

/** A body's `schemas` must list `urn`. The routes' schema (ScimBody) admits JSON objects alone; anything else has no `schemas` either. */
function requireSchema (raw: Json, urn: string): Record<string, Json> {
  const body = raw as Record<string, Json>
  const schemas = body.schemas
  if (!Array.isArray(schemas) || !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === urn.toLowerCase())) {
    throw scimError('invalidSyntax', `schemas must list ${urn}`)
  }
  return body
}

// ------------------------------------------------------------ users

/** The state of a user that SCIM may change. */
interface UserState {
  userName: string
  email: string
  displayName: string | null
  givenName: string | null
  familyName: string | null
  externalId: string | null
  active: boolean
}

function stateOf (user: UserRow): UserState {
  return { userName: user.userName ?? user.email, email: user.email, displayName: user.name, givenName: user.givenName, familyName: user.familyName, externalId: user.externalId, active: user.active }
}

/** A user's state from a create or replace body (absent optional attributes are cleared; absent `active` keeps `current`). */
function userFromBody (raw: Json, current: UserState | null, id: string | null): UserState {
  const body = attributesOf(requireSchema(raw, SCHEMAS.user), SCHEMAS.user)
  if (id !== null && body.has('id') && String(body.get('id')).toLowerCase() !== id.toLowerCase()) throw scimError('mutability', 'id cannot be changed')
  const userName = text('userName', body.get('username') ?? null, 254, { nullable: false }) as string
  const name = body.get('name') ?? null
  if (name !== null && !isObject(name)) throw invalidValue('name must be an object {givenName, familyName}')
  const names = name === null ? new Map<string, Json>() : attributesOf(name, '')
  const primary = emailOf(body.get('emails') ?? null)
  const mail = primary ?? (isEmail(userName) ? userName : null)
  if (mail === null) throw invalidValue('emails: a user needs an email address (give emails, or a userName that is one)')
  return {
    userName,
    email: mail,
    displayName: text('displayName', body.get('displayname') ?? null, 100),
    givenName: text('name.givenName', names.get('givenname') ?? null, 100),
    familyName: text('name.familyName', names.get('familyname') ?? null, 100),
    externalId: text('externalId', body.get('externalid') ?? null, 255),
    active: body.has('active') ? bool('active', body.get('active')) : current?.active ?? true
  }
}

/** userName is stored only when it is not the email. */
const storedUserName = (s: UserState): string | null => s.userName.toLowerCase() === s.email.toLowerCase() ? null : s.userName

/** POST /Users: the user to create. */
export function newUser (body: Json): NewUser {
  const s = userFromBody(body, null, null)
  return { email: s.email, name: s.displayName, active: s.active, userName: storedUserName(s), externalId: s.externalId, givenName: s.givenName, familyName: s.familyName }
}

/** The fields of `next` that differ from `user` (an empty object when nothing changes). */
function userChanges (user: UserRow, next: UserState): UserPatchBody {
  const change: Record<string, unknown> = {}
  const set = (key: keyof UserPatchBody, before: unknown, after: unknown): void => { if (before !== after) change[key] = after }
  set('email', user.email, next.email)
  set('name', user.name, next.displayName)
  set('active', user.active, next.active)
  set('userName', user.userName, storedUserName(next))
  set('externalId', user.externalId, next.externalId)
  set('givenName', user.givenName, next.givenName)
  set('familyName', user.familyName, next.familyName)
  return change as UserPatchBody
}

/** PUT /Users/{id}: the changes that make `user` what the body says. */
export function replaceUser (user: UserRow, body: Json): UserPatchBody {
  return userChanges(user, userFromBody(body, stateOf(user), user.id))
}

interface Operation { op: 'add' | 'replace' | 'remove', path: PatchPath | null, value: Json }

/** The operations of a PatchOp body (RFC 7644 §3.5.2); `op` case-insensitive (Entra sends "Replace"). */
export function patchOperations (raw: Json): Operation[] {
  const body = requireSchema(raw, SCHEMAS.patch)
  const ops = body.Operations ?? body.operations
  if (!Array.isArray(ops) || ops.length === 0) throw scimError('invalidSyntax', 'Operations must be a non-empty array')
  if (ops.length > 1000) throw scimError('tooMany', 'At most 1000 operations per PATCH')
  return ops.map((o: Json, i) => {
    if (!isObject(o)) throw scimError('invalidSyntax', `Operations[${i}] must be an object`)
    const op = typeof o.op === 'string' ? o.op.toLowerCase() : ''
    if (op !== 'add' && op !== 'replace' && op !== 'remove') throw scimError('invalidSyntax', `Operations[${i}].op must be add, replace or remove`)
    if (o.path !== undefined && typeof o.path !== 'string') throw scimError('invalidPath', `Operations[${i}].path must be a string`)
    const path = o.path === undefined || o.path === '' ? null : parsePatchPath(o.path)
    if (path === null && op === 'remove') throw scimError('noTarget', `Operations[${i}]: remove needs a path`)
    if (path === null && !isObject(o.value)) throw invalidValue(`Operations[${i}]: without a path, value must be an object of attributes`)
    if (op !== 'remove' && o.value === undefined) throw invalidValue(`Operations[${i}]: ${op} needs a value`)
    return { op, path, value: o.value }
  })
}

/** The operations without a path, spread into one operation per attribute of their value. */
function withPaths (ops: Operation[], coreUrn: string): Array<Operation & { path: PatchPath }> {
  return ops.flatMap((o) => {
    if (o.path !== null) return [o as Operation & { path: PatchPath }]
    return [...attributesOf(o.value as Record<string, Json>, coreUrn)].map(([key, value]) => ({ op: o.op, path: parsePatchPath(key), value }))
  })
}

/** Evaluates a value path's filter on one value of a multi-valued attribute (one resource's own values, not a listing). */
export function matches (filter: Filter, value: Record<string, Json>): boolean {
  switch (filter.op) {
    case 'and': return filter.filters.every((f) => matches(f, value))
    case 'or': return filter.filters.some((f) => matches(f, value))
    case 'not': return !matches(filter.filter, value)
    case '[]': throw scimError('invalidPath', 'A value filter cannot hold another one')
    default: {
      const key = Object.keys(value).find((k) => k.toLowerCase() === splitAttrPath(filter.attrPath).attr)
      const actual = key === undefined ? undefined : value[key]
      if (filter.op === 'pr') return actual !== undefined && actual !== null && actual !== ''
      const a = typeof actual === 'string' ? actual.toLowerCase() : actual
      const b = typeof filter.compValue === 'string' ? filter.compValue.toLowerCase() : filter.compValue
      switch (filter.op) {
        case 'eq': return a === b
        case 'ne': return a !== b
        case 'co': return typeof a === 'string' && typeof b === 'string' && a.includes(b)
        case 'sw': return typeof a === 'string' && typeof b === 'string' && a.startsWith(b)
        case 'ew': return typeof a === 'string' && typeof b === 'string' && a.endsWith(b)
        default: {
          if (typeof a !== typeof b || (typeof a !== 'string' && typeof a !== 'number')) return false
          const x = a as string | number
          const y = b as string | number
          return filter.op === 'gt' ? x > y : filter.op === 'ge' ? x >= y : filter.op === 'lt' ? x < y : x <= y
        }
      }
    }
  }
}

const READ_ONLY = new Set(['id', 'meta', 'groups', 'schemas'])

/** PATCH /Users/{id}: the changes its operations make to `user`. */
export function patchUser (user: UserRow, ops: Operation[]): UserPatchBody {
  const s = stateOf(user)
  for (const { op, path, value } of withPaths(ops, SCHEMAS.user)) {
    if (path.urn !== null && path.urn !== SCHEMAS.user.toLowerCase()) continue
    const { attr, sub, filter } = path
    const remove = op === 'remove'
    if (READ_ONLY.has(attr)) {
      if (attr === 'id' && !remove && typeof value === 'string' && value.toLowerCase() === user.id) continue
      if (attr === 'schemas') continue
      throw scimError('mutability', `${attr} is read-only${attr === 'groups' ? ': change memberships through /Groups' : ''}`)
    }
    switch (attr) {
      case 'username':
        if (remove) throw scimError('mutability', 'userName is required: it cannot be removed')
        s.userName = text('userName', value, 254, { nullable: false }) as string
        break
      case 'displayname':
        s.displayName = remove ? null : text('displayName', value, 100)
        break
      case 'externalid':
        s.externalId = remove ? null : text('externalId', value, 255)
        break
      case 'active':
        if (remove) throw scimError('mutability', 'active cannot be removed: replace it with false to deactivate')
        s.active = bool('active', value)
        break
      case 'name': {
        if (sub === 'givenname' || sub === 'familyname' || sub === null) {
          const values: Map<string, Json> = sub !== null
            ? new Map([[sub, remove ? null : value]])
            : remove ? new Map<string, Json>([['givenname', null], ['familyname', null]]) : isObject(value) ? attributesOf(value, '') : (() => { throw invalidValue('name must be an object {givenName, familyName}') })()
          if (values.has('givenname')) s.givenName = text('name.givenName', values.get('givenname') ?? null, 100)
          if (values.has('familyname')) s.familyName = text('name.familyName', values.get('familyname') ?? null, 100)
        }
        break
      }
      case 'emails': {
        if (remove) throw scimError('mutability', 'emails: a user needs its email address; replace it instead')
        const current = { value: s.email, type: 'work', primary: true }
        if (filter !== null && !matches(filter, current) && op === 'replace') throw scimError('noTarget', 'No email matches the value filter')
        if (filter === null && sub === null) {
          s.email = emailOf(value) ?? s.email
        } else if (sub === 'value' || sub === null) {
          s.email = email('emails.value', sub === null && isObject(value) ? value.value : value)
        }
        break
      }
      // Attributes Roster does not keep are ignored.
    }
  }
  return userChanges(user, s)
}

// ------------------------------------------------------------ groups

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function memberIds (value: Json): string[] {
  const list = Array.isArray(value) ? value : [value]
  return list.map((m) => {
    const id = isObject(m) ? m.value : undefined
    if (typeof id !== 'string' || !UUID.test(id)) throw invalidValue('members must be [{"value": "<id of a user>"}]')
    return id.toLowerCase()
  })
}

/** A group's state from a create or replace body (absent members: none). */
export function groupFromBody (raw: Json, id: string | null): GroupState {
  const body = attributesOf(requireSchema(raw, SCHEMAS.group), SCHEMAS.group)
  if (id !== null && body.has('id') && String(body.get('id')).toLowerCase() !== id.toLowerCase()) throw scimError('mutability', 'id cannot be changed')
  const members = body.get('members')
  return {
    displayName: text('displayName', body.get('displayname') ?? null, 200, { nullable: false }) as string,
    externalId: text('externalId', body.get('externalid') ?? null, 255),
    members: members === undefined || members === null ? [] : memberIds(members)
  }
}

/** PATCH /Groups/{id}: the group's state after its operations (members: add, remove by value path or by value, replace). */
export function patchGroup (group: GroupRow, members: string[], ops: Operation[]): GroupState {
  const s: GroupState = { displayName: group.displayName, externalId: group.externalId, members: [...members] }
  for (const { op, path, value } of withPaths(ops, SCHEMAS.group)) {
    if (path.urn !== null && path.urn !== SCHEMAS.group.toLowerCase()) continue
    const { attr, filter } = path
    const remove = op === 'remove'
    if (READ_ONLY.has(attr)) {
      // Okta sends the id with a replace of the displayName.
      if (attr === 'id' && !remove && typeof value === 'string' && value.toLowerCase() === group.id) continue
      if (attr === 'schemas') continue
      throw scimError('mutability', `${attr} is read-only`)
    }
    switch (attr) {
      case 'displayname':
        if (remove) throw scimError('mutability', 'displayName is required: it cannot be removed')
        s.displayName = text('displayName', value, 200, { nullable: false }) as string
        break
      case 'externalid':
        s.externalId = remove ? null : text('externalId', value, 255)
        break
      case 'members': {
        if (filter !== null) {
          // members[value eq "…"]: the members the filter selects.
          const selected = s.members.filter((m) => matches(filter, { value: m, type: 'User' }))
          if (remove) s.members = s.members.filter((m) => !selected.includes(m))
          else throw scimError('invalidPath', 'members[…]: only remove takes a value filter; add members with path "members"')
        } else if (remove) {
          // Entra ID removes members with a value: [{value}]; without one, every member goes.
          const gone = value === undefined || value === null ? null : memberIds(value)
          s.members = gone === null ? [] : s.members.filter((m) => !gone.includes(m))
        } else {
          const given = value === null ? [] : memberIds(value)
          s.members = op === 'replace' ? given : [...s.members, ...given]
        }
        break
      }
      // Attributes Roster does not keep are ignored.
    }
  }
  s.members = [...new Set(s.members)]
  return s
}

// ------------------------------------------------------------ attributes / excludedAttributes

/** RFC 7644 §3.9: keeps the attributes asked for (`id` and `schemas` always), or drops the excluded ones. */
export function project<T extends { id: string }> (resource: T, coreUrn: string, attributes: string[] | null, excluded: string[] | null): Partial<T> & { id: string } {
  const names = (list: string[]): Array<{ attr: string, sub: string | null }> => list.map((p) => {
    const { urn, attr, sub } = splitAttrPath(p.trim())
    return urn === null || urn === coreUrn.toLowerCase() ? { attr, sub } : { attr: '', sub: null }
  })
  const out: Record<string, unknown> = {}
  const entries = Object.entries(resource)
  if (attributes !== null) {
    const wanted = names(attributes)
    for (const [key, value] of entries) {
      const lower = key.toLowerCase()
      if (lower === 'id' || lower === 'schemas') { out[key] = value; continue }
      const asked = wanted.filter((w) => w.attr === lower)
      if (asked.length === 0) continue
      if (asked.some((w) => w.sub === null) || typeof value !== 'object' || value === null) { out[key] = value; continue }
      out[key] = pick(value, asked.map((w) => w.sub as string))
    }
    return out as Partial<T> & { id: string }
  }
  const dropped = names(excluded ?? [])
  for (const [key, value] of entries) {
    const lower = key.toLowerCase()
    const drop = dropped.filter((d) => d.attr === lower)
    if (lower === 'id' || lower === 'schemas' || drop.length === 0) { out[key] = value; continue }
    if (drop.some((d) => d.sub === null)) continue
    out[key] = omit(value, drop.map((d) => d.sub as string))
  }
  return out as Partial<T> & { id: string }
}

/** An object's sub-attributes kept or dropped; of a multi-valued attribute (emails, groups, members: arrays of objects), each value's. */
function subKeys (value: object, subs: string[], keep: boolean): unknown {
  const one = (v: object): object => Object.fromEntries(Object.entries(v).filter(([k]) => subs.includes(k.toLowerCase()) === keep))
  return Array.isArray(value) ? (value as object[]).map(one) : one(value)
}
const pick = (value: object, subs: string[]): unknown => subKeys(value, subs, true)
const omit = (value: unknown, subs: string[]): unknown => typeof value === 'object' && value !== null ? subKeys(value, subs, false) : value
