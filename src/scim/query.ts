import { containsPattern } from '../infra/sql.ts'
import { scimError } from './errors.ts'
import { splitAttrPath, type CompareOp, type Filter } from './filter.ts'

/**
 * SCIM filters compiled to parameterised SQL over the users and groups
 * tables, never evaluated row by row in JavaScript. Each attribute maps to
 * the SQL expression its index is built on (db/schema/users.ts, groups.ts):
 * case-insensitive strings compare `lower(column)` with the lowercased value
 * (btree lower() indexes for eq/gt/ge/lt/le, pg_trgm GIN indexes for co/sw/ew
 * as LIKE patterns), case-exact ones the column itself. Values are always
 * parameters. A comparison with an attribute that has no value is false, also
 * under `not`; `ne` is true for it.
 */

type AttrType = 'string' | 'exact' | 'boolean' | 'datetime' | 'uuid' | 'constant'

export interface Attribute {
  type: AttrType
  /** The SQL expression compared (for `string`, already lowercased). */
  expr: string
  /** The column tested by `pr` (default `expr`). */
  present?: string
  /** `constant`: the value every row has (emails.type is "work", emails.primary true). */
  value?: string | boolean
  /** Multi-valued (members): the comparison goes inside `EXISTS` over the values. */
  multi?: string
  /** May be sorted on (sortBy). */
  sortable?: boolean
  /** co/sw/ew: the LIKE condition for a pattern parameter, where `expr LIKE` would miss the indexes. */
  like?: (pattern: string) => string
}

export interface ResourceAttributes {
  /** The resource's core schema URN, lowercased: a path may be qualified with it. */
  urn: string
  /** Attributes by lowercased path (`username`, `name.givenname`, `emails.value`). */
  attributes: Record<string, Attribute>
  /** Multi-valued complex attributes: the `EXISTS (… AND ${cond})` their value filters run in. */
  multi: Record<string, (cond: string) => string>
}

const USER_URN = 'urn:ietf:params:scim:schemas:core:2.0:user'
const GROUP_URN = 'urn:ietf:params:scim:schemas:core:2.0:group'

const created: Attribute = { type: 'datetime', expr: 'created_at', sortable: true }
const modified: Attribute = { type: 'datetime', expr: 'updated_at', sortable: true }
const id: Attribute = { type: 'uuid', expr: 'id' }

export const USER_ATTRIBUTES: ResourceAttributes = {
  urn: USER_URN,
  attributes: {
    id,
    username: {
      type: 'string',
      expr: 'lower(coalesce(user_name, email))',
      sortable: true,
      // Each side has its trigram index (users_email_trgm_idx; users_user_name_trgm_idx, partial): a BitmapOr.
      like: (p) => `((user_name IS NULL AND lower(email) LIKE ${p}) OR (user_name IS NOT NULL AND lower(user_name) LIKE ${p}))`
    },
    'emails.value': { type: 'string', expr: 'lower(email)', sortable: true },
    'emails.type': { type: 'constant', expr: '', value: 'work' },
    'emails.primary': { type: 'constant', expr: '', value: true },
    'name.givenname': { type: 'string', expr: 'lower(given_name)', present: 'given_name', sortable: true },
    'name.familyname': { type: 'string', expr: 'lower(family_name)', present: 'family_name', sortable: true },
    displayname: { type: 'string', expr: "lower(coalesce(name, ''))", present: 'name', sortable: true },
    externalid: { type: 'exact', expr: 'external_id', sortable: true },
    active: { type: 'boolean', expr: 'active', sortable: true },
    'meta.created': created,
    'meta.lastmodified': modified
  },
  multi: {}
}

const MEMBERS = (cond: string): string => `EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = groups.id AND ${cond})`

export const GROUP_ATTRIBUTES: ResourceAttributes = {
  urn: GROUP_URN,
  attributes: {
    id,
    displayname: { type: 'string', expr: 'lower(display_name)', sortable: true },
    externalid: { type: 'exact', expr: 'external_id', sortable: true },
    'members.value': { type: 'uuid', expr: 'm.user_id', multi: 'members' },
    'meta.created': created,
    'meta.lastmodified': modified
  },
  multi: { members: MEMBERS }
}

/** A multi-valued attribute filtered without a sub-attribute means its `value` (RFC 7644 §3.4.2.2). */
const DEFAULT_SUB = new Set(['emails', 'members'])

const invalid = (detail: string): Error => scimError('invalidFilter', detail)

/** The attribute a filter path names (relative to `parent` inside a value path). */
export function resolveAttribute (resource: ResourceAttributes, path: string, parent: string | null = null): { name: string, attribute: Attribute } {
  const { urn, attr, sub } = splitAttrPath(path)
  if (urn !== null && urn !== resource.urn) throw invalid(`Unsupported attribute ${path}: only ${resource.urn}'s attributes can be filtered`)
  let name = parent === null ? (sub === null ? attr : `${attr}.${sub}`) : `${parent}.${attr}`
  if (parent !== null && sub !== null) throw invalid(`Unsupported attribute ${path} in the value filter of ${parent}`)
  if (DEFAULT_SUB.has(name)) name = `${name}.value`
  const attribute = resource.attributes[name]
  if (attribute === undefined) throw invalid(`Unsupported attribute ${path} (supported: ${Object.keys(resource.attributes).join(', ')})`)
  return { name, attribute }
}

export class SqlParams {
  readonly values: unknown[] = []
  add (value: unknown): string {
    this.values.push(value)
    return `$${this.values.length}`
  }
}

function likePattern (op: 'co' | 'sw' | 'ew', value: string): string {
  const escaped = containsPattern(value).slice(1, -1)
  return op === 'co' ? `%${escaped}%` : op === 'sw' ? `${escaped}%` : `%${escaped}`
}

const SQL_OPS: Record<string, string> = { eq: '=', gt: '>', ge: '>=', lt: '<', le: '<=' }

/** One comparison as SQL; `two` asks for a two-valued result (under `not`): false, never NULL, for a missing value. */
function compare (name: string, a: Attribute, op: CompareOp, value: string | number | boolean | null, params: SqlParams): string {
  const col = a.present ?? a.expr
  if (value === null) {
    if (op === 'eq') return a.type === 'constant' ? 'false' : `${col} IS NULL`
    if (op === 'ne') return a.type === 'constant' ? 'true' : `${col} IS NOT NULL`
    throw invalid(`${name} ${op} null: only eq and ne compare with null`)
  }
  switch (a.type) {
    case 'constant': {
      if (typeof value !== typeof a.value) throw invalid(`${name} is a ${typeof a.value}: ${JSON.stringify(value)} is not one`)
      const same = typeof value === 'string' ? value.toLowerCase() === (a.value as string).toLowerCase() : value === a.value
      if (op === 'eq' || op === 'ne') return String(op === 'eq' ? same : !same)
      throw invalid(`${name} takes eq and ne only`)
    }
    case 'boolean':
      if (typeof value !== 'boolean') throw invalid(`${name} is a boolean: compare it with true or false`)
      if (op === 'eq') return `${a.expr} = ${params.add(value)}`
      if (op === 'ne') return `${a.expr} <> ${params.add(value)}`
      throw invalid(`${name} is a boolean: eq and ne only`)
    case 'uuid': {
      if (typeof value !== 'string') throw invalid(`${name} is a string: ${JSON.stringify(value)} is not one`)
      if (op !== 'eq' && op !== 'ne') throw invalid(`${name} takes eq and ne only`)
      // An id that is not a UUID is the id of no resource.
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) return op === 'eq' ? 'false' : 'true'
      return `${a.expr} ${op === 'eq' ? '=' : '<>'} ${params.add(value.toLowerCase())}::uuid`
    }
    case 'datetime': {
      if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})$/i.test(value) || Number.isNaN(Date.parse(value))) {
        throw invalid(`${name} is a dateTime: compare it with an RFC 3339 time such as "2024-05-13T04:42:34Z"`)
      }
      if (op === 'ne') return `${a.expr} <> ${params.add(value)}::timestamptz`
      const sqlOp = SQL_OPS[op]
      if (sqlOp === undefined) throw invalid(`${name} is a dateTime: eq, ne, gt, ge, lt and le only`)
      return `${a.expr} ${sqlOp} ${params.add(value)}::timestamptz`
    }
    default: {
      if (typeof value !== 'string') throw invalid(`${name} is a string: ${JSON.stringify(value)} is not one`)
      const v = a.type === 'string' ? value.toLowerCase() : value
      if (op === 'ne') return `${a.expr} IS DISTINCT FROM ${params.add(v)}`
      let cond: string
      if (op === 'co' || op === 'sw' || op === 'ew') {
        const p = params.add(likePattern(op, v))
        cond = a.like === undefined ? `${a.expr} LIKE ${p}` : a.like(p)
      } else cond = `${a.expr} ${SQL_OPS[op] as string} ${params.add(v)}`
      // An expression that reads a missing value as '' (to match its index) must not match users without one.
      return a.present !== undefined && a.expr.includes('coalesce') ? `(${a.present} IS NOT NULL AND ${cond})` : cond
    }
  }
}

/** Compiles a filter to a SQL condition, its values added to `params`. */
export function compileFilter (resource: ResourceAttributes, filter: Filter, params: SqlParams): string {
  function walk (f: Filter, parent: string | null, negated: boolean): string {
    switch (f.op) {
      case 'and':
      case 'or':
        return `(${f.filters.map((x) => walk(x, parent, negated)).join(f.op === 'and' ? ' AND ' : ' OR ')})`
      case 'not':
        return `NOT (${walk(f.filter, parent, true)})`
      case '[]': {
        const { attr, sub, urn } = splitAttrPath(f.attrPath)
        if ((urn !== null && urn !== resource.urn) || sub !== null) throw invalid(`Unsupported value path ${f.attrPath}`)
        const inner = walk(f.valFilter, attr, false)
        const wrap = resource.multi[attr]
        return wrap === undefined ? inner : wrap(inner)
      }
      default: {
        const { name, attribute } = resolveAttribute(resource, f.attrPath, parent)
        let cond: string
        if (f.op === 'pr') cond = attribute.type === 'constant' || attribute.type === 'boolean' || attribute.type === 'datetime' || attribute === id ? 'true' : `${attribute.present ?? attribute.expr} IS NOT NULL`
        else cond = compare(name, attribute, f.op, f.compValue, params)
        // Under `not`, a comparison with a missing value must be false (NOT NULL would drop the row).
        if (negated && cond !== 'true' && cond !== 'false') cond = `(${cond}) IS TRUE`
        // Members alone (not in a value path): each comparison tests the group's members.
        const wrap = attribute.multi === undefined || parent !== null ? undefined : resource.multi[attribute.multi]
        return wrap === undefined ? cond : wrap(cond)
      }
    }
  }
  return walk(filter, null, false)
}

/** ORDER BY for sortBy / sortOrder (RFC 7644 §3.4.2.3); ties broken by id. Default: creation order. */
export function orderBy (resource: ResourceAttributes, sortBy: string | undefined, sortOrder: 'ascending' | 'descending' | undefined): string {
  const dir = sortOrder === 'descending' ? 'DESC' : 'ASC'
  if (sortBy === undefined) return `created_at ${dir}, id ${dir}`
  let resolved: { attribute: Attribute }
  try {
    resolved = resolveAttribute(resource, sortBy)
  } catch {
    throw scimError('invalidValue', `sortBy: ${sortBy} cannot be sorted on`)
  }
  if (resolved.attribute.sortable !== true) throw scimError('invalidValue', `sortBy: ${sortBy} cannot be sorted on`)
  return `${resolved.attribute.expr} ${dir}, id ${dir}`
}
