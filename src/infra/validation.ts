import { AjvCompiler } from '@fastify/ajv-compiler'
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv'
import { isEmail } from './email.ts'

/**
 * THE request validation: how every schema of every route is compiled (the
 * `schemaController` of src/server-options.ts). Fastify's own compiler
 * (@fastify/ajv-compiler), twice:
 *
 * - bodies are never coerced: `{"active": "false"}` or `{"email": ["a@x"]}` is a 400,
 *   not a boolean or a string;
 * - query strings, path parameters and headers, which are text on the wire, are
 *   coerced to the schema's types, but strictly: a number must be written as a
 *   plain decimal (`0x10`, ` 5`, `1e2` for an integer, `Infinity`, `1e400` are 400s,
 *   where Ajv alone turns them into 16, 5, 100 or an Infinity that no bound stops).
 *
 * Whatever the part, a validated value never holds a number PostgreSQL cannot
 * store (Infinity, NaN), and `format` means what PostgreSQL and mail servers
 * accept: `date-time` is isDateTime's profile of RFC 3339, `email` is isEmail's.
 */

/** The parts of a request that arrive as text and are coerced to their schema's types. */
const COERCED = new Set(['querystring', 'params', 'headers'])

const pool = AjvCompiler()

/**
 * RFC 3339 date-time, as PostgreSQL's timestamptz takes it: years 0001–9999,
 * a real calendar date, `T` (either case) between date and time, at most 9
 * fractional digits, a `Z` or an offset of at most ±14:00 (the widest in use;
 * PostgreSQL refuses beyond ±15:59), a leap second only at 23:59:60 UTC.
 */
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/
const MAX_OFFSET = 14 * 60

export function isDateTime (value: string): boolean {
  const m = DATE_TIME.exec(value)
  if (m === null) return false
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  const offset = m[7] === undefined ? 0 : (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9]))
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return false
  if (hour > 23 || minute > 59 || second > 60 || Number(m[9] ?? 0) > 59 || Math.abs(offset) > MAX_OFFSET) return false
  // 23:59:60 in UTC, whatever the offset it is written with.
  return second < 60 || ((((hour * 60 + minute - offset) % 1440) + 1440) % 1440) === 1439
}

function daysIn (year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28
  return [4, 6, 9, 11].includes(month) ? 30 : 31
}

/** The formats Roster defines its own way, over ajv-formats' (onCreate runs after ajv-formats is added). */
function addFormats (ajv: Ajv): void {
  ajv.addFormat('date-time', isDateTime)
  ajv.addFormat('email', isEmail)
}

const INTEGER = /^-?(?:0|[1-9]\d*)$/
const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/

type Numeric = 'integer' | 'number'

/** The types a schema allows (through `type` and `anyOf`). */
function typesOf (schema: Record<string, unknown>): string[] {
  const own = schema.type === undefined ? [] : ([] as unknown[]).concat(schema.type) as string[]
  const alternatives = (schema.anyOf ?? schema.oneOf ?? []) as Array<Record<string, unknown>>
  return [...own, ...alternatives.flatMap(typesOf)]
}

/** The top-level properties of a coerced part that take a number: name -> integer or number. */
function numericProperties (schema: unknown): Map<string, Numeric> {
  const out = new Map<string, Numeric>()
  const properties = (schema as { properties?: Record<string, Record<string, unknown>> } | null)?.properties ?? {}
  for (const [name, property] of Object.entries(properties)) {
    const types = typesOf(property)
    if (types.includes('number')) out.set(name, 'number')
    else if (types.includes('integer')) out.set(name, 'integer')
  }
  return out
}

function typeError (instancePath: string, type: string, message = `must be ${type}`): ErrorObject {
  return { instancePath, schemaPath: '#/type', keyword: 'type', params: { type }, message }
}

/** Text for a number that is not a plain decimal of a value a number can hold. */
function numberSyntaxErrors (data: unknown, numeric: Map<string, Numeric>): ErrorObject[] {
  if (numeric.size === 0 || typeof data !== 'object' || data === null) return []
  const errors: ErrorObject[] = []
  for (const [name, type] of numeric) {
    for (const value of ([] as unknown[]).concat((data as Record<string, unknown>)[name])) {
      if (typeof value !== 'string') continue
      const ok = type === 'integer' ? INTEGER.test(value) && Number.isSafeInteger(Number(value)) : NUMBER.test(value) && Number.isFinite(Number(value))
      if (!ok) errors.push(typeError(`/${name}`, type, type === 'integer' ? 'must be an integer written in decimal digits' : 'must be a finite number written in decimal'))
    }
  }
  return errors
}

/** Infinity, -Infinity or NaN anywhere in a value (`1e400` in a JSON body parses to Infinity). */
function nonFiniteErrors (data: unknown): ErrorObject[] {
  const errors: ErrorObject[] = []
  const stack: Array<[unknown, string]> = [[data, '']]
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [value, path] = item
    if (typeof value === 'number' && !Number.isFinite(value)) errors.push(typeError(path, 'number', 'must be a finite number'))
    else if (typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) stack.push([v, `${path}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`])
    }
  }
  return errors
}

/**
 * Ajv's validate function, plus the number checks above (which speak first for
 * the paths they name). Compiled on its first call: a route's schemas cost
 * memory (Ajv's generated code, its closures) only once the route is used,
 * and most routes of an instance never are (tests compile them all, test/schemas.test.ts).
 */
function guarded (compile: () => ValidateFunction, numeric: Map<string, Numeric>): ValidateFunction {
  let compiled: ValidateFunction | undefined
  const validator = (): ValidateFunction => (compiled ??= compile())
  const run = ((data: unknown, context?: Parameters<ValidateFunction>[1]): boolean => {
    const validate = validator()
    const errors = numberSyntaxErrors(data, numeric)
    const named = (e: ErrorObject): boolean => errors.some((o) => o.instancePath === e.instancePath)
    if (!validate(data, context)) errors.push(...(validate.errors ?? []).filter((e) => !named(e)))
    errors.push(...nonFiniteErrors(data).filter((e) => !named(e)))
    run.errors = errors.length === 0 ? null : errors
    return errors.length === 0
  }) as ValidateFunction
  // Fastify hands Ajv the request as parent data (so defaults may replace a missing part) when schemaEnv
  // is set; it reads it just before the call, so reading it compiles no earlier than the call would.
  Object.defineProperty(run, 'schemaEnv', { get: () => validator().schemaEnv })
  return run
}

/** The server's `ajv` option, as Fastify hands it to the factory. */
interface AjvServerOptions { customOptions?: Record<string, unknown>, plugins?: unknown[] }
interface Route { schema: unknown, httpPart?: string }
type Compile = (route: Route) => ValidateFunction

/** `schemaController.compilersFactory.buildValidator`: one compiler for bodies, one for the coerced parts. */
export function buildValidator (externalSchemas: Record<string, unknown>, options: AjvServerOptions = {}): Compile {
  const compiler = (coerceTypes: false | 'array'): Compile =>
    pool(externalSchemas as never, { ...options, customOptions: { ...options.customOptions, coerceTypes }, onCreate: addFormats } as never) as unknown as Compile
  const body = compiler(false)
  const text = compiler('array')
  return (route) => {
    const coerced = route.httpPart !== undefined && COERCED.has(route.httpPart)
    return guarded(() => (coerced ? text : body)(route), coerced ? numericProperties(route.schema) : new Map())
  }
}
