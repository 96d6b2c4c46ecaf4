import { scimError } from './errors.ts'

/**
 * The SCIM filter language (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2):
 * parsed into the AST shape npm's scim2-parse-filter uses (the tests
 * cross-check the two on a generated corpus). Stricter than that parser
 * where the RFC is: `not` needs parentheses, attribute names start with a
 * letter, a value path takes no sub-attribute inside a filter. Operators and
 * the literals true/false/null are case-insensitive (ABNF strings are);
 * attribute names keep their case here and are matched case-insensitively
 * when compiled (./query.ts).
 */

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'lt' | 'ge' | 'le'
export type Filter =
  | { op: CompareOp, attrPath: string, compValue: string | number | boolean | null }
  | { op: 'pr', attrPath: string }
  | { op: 'and' | 'or', filters: Filter[] }
  | { op: 'not', filter: Filter }
  | { op: '[]', attrPath: string, valFilter: Filter }

const COMPARE = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'lt', 'ge', 'le'])
/** Bounds on what a filter may cost to parse and to run. */
export const MAX_FILTER_LENGTH = 4096
const MAX_DEPTH = 20
const MAX_NODES = 200

/** An attribute path: an optional schema URI (`urn:…:User:`), a name, an optional sub-attribute. */
const ATTR_PATH = /^(?:[A-Za-z][A-Za-z0-9+.:_-]*:)?[A-Za-z][\w$-]*(?:\.[A-Za-z][\w$-]*)?$/

type Token = { kind: 'word', text: string, at: number } | { kind: 'string', value: string, at: number } | { kind: 'number', value: number, at: number } | { kind: '(' | ')' | '[' | ']', at: number }

const invalid = (detail: string): Error => scimError('invalidFilter', detail)

function tokenize (input: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < input.length) {
    const c = input[i] as string
    if (c === ' ' || c === '\t') { i++; continue }
    if ('()[]'.includes(c)) { tokens.push({ kind: c as '(', at: i }); i++; continue }
    if (c === '"') {
      let j = i + 1
      while (j < input.length && input[j] !== '"') j += input[j] === '\\' ? 2 : 1
      if (j >= input.length) throw invalid(`Unterminated string at ${i}`)
      let value: unknown
      try {
        value = JSON.parse(input.slice(i, j + 1))
      } catch {
        throw invalid(`Invalid string at ${i}`)
      }
      tokens.push({ kind: 'string', value: value as string, at: i })
      i = j + 1
      continue
    }
    const number = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.:$-])/.exec(input.slice(i))
    if (number !== null) { tokens.push({ kind: 'number', value: Number(number[0]), at: i }); i += number[0].length; continue }
    const word = /^[\w.:$-]+/.exec(input.slice(i))
    if (word === null) throw invalid(`Unexpected character ${JSON.stringify(c)} at ${i}`)
    tokens.push({ kind: 'word', text: word[0], at: i })
    i += word[0].length
  }
  return tokens
}

class Parser {
  private pos = 0
  private nodes = 0
  constructor (private readonly tokens: Token[]) {}

  private peek (): Token | undefined { return this.tokens[this.pos] }
  private isWord (token: Token | undefined, ...words: string[]): boolean {
    return token?.kind === 'word' && words.includes(token.text.toLowerCase())
  }

  private describe (token: Token | undefined): string {
    if (token === undefined) return 'the end of the filter'
    return token.kind === 'word' ? `"${token.text}" at ${token.at}` : `${token.kind} at ${token.at}`
  }

  private expect (kind: ')' | ']'): void {
    const token = this.peek()
    if (token?.kind !== kind) throw invalid(`Expected "${kind}" but found ${this.describe(token)}`)
    this.pos++
  }

  private count (): void {
    if (++this.nodes > MAX_NODES) throw invalid(`The filter has more than ${MAX_NODES} terms`)
  }

  parseAll (): Filter {
    if (this.tokens.length === 0) throw invalid('The filter is empty')
    const filter = this.or(0, false)
    if (this.peek() !== undefined) throw invalid(`Unexpected ${this.describe(this.peek())}`)
    return filter
  }

  private chain (op: 'or' | 'and', next: () => Filter): Filter {
    const filters = [next()]
    while (this.isWord(this.peek(), op)) {
      this.pos++
      filters.push(next())
    }
    return filters.length === 1 ? filters[0] as Filter : { op, filters }
  }

  private or (depth: number, inValuePath: boolean): Filter {
    if (depth > MAX_DEPTH) throw invalid(`The filter nests deeper than ${MAX_DEPTH}`)
    return this.chain('or', () => this.chain('and', () => this.atom(depth, inValuePath)))
  }

  private atom (depth: number, inValuePath: boolean): Filter {
    this.count()
    const token = this.peek()
    if (token?.kind === '(') {
      this.pos++
      const inner = this.or(depth + 1, inValuePath)
      this.expect(')')
      return inner
    }
    if (this.isWord(token, 'not') && this.tokens[this.pos + 1]?.kind === '(') {
      this.pos += 2
      const inner = this.or(depth + 1, inValuePath)
      this.expect(')')
      return { op: 'not', filter: inner }
    }
    if (token?.kind !== 'word' || !ATTR_PATH.test(token.text)) throw invalid(`Expected an attribute, "(" or "not (" but found ${this.describe(token)}`)
    this.pos++
    const attrPath = token.text
    if (this.peek()?.kind === '[') {
      if (inValuePath) throw invalid(`A value filter cannot hold another one (at ${this.describe(this.peek())})`)
      this.pos++
      const valFilter = this.or(depth + 1, true)
      this.expect(']')
      return { op: '[]', attrPath, valFilter }
    }
    const opToken = this.peek()
    if (opToken?.kind !== 'word') throw invalid(`Expected an operator after ${attrPath} but found ${this.describe(opToken)}`)
    const op = opToken.text.toLowerCase()
    this.pos++
    if (op === 'pr') return { op: 'pr', attrPath }
    if (!COMPARE.has(op)) throw invalid(`Unknown operator "${opToken.text}" (eq, ne, co, sw, ew, gt, lt, ge, le, pr)`)
    const value = this.peek()
    this.pos++
    if (value?.kind === 'string' || value?.kind === 'number') return { op: op as CompareOp, attrPath, compValue: value.value }
    if (this.isWord(value, 'true', 'false', 'null')) {
      const literal = (value as { text: string }).text.toLowerCase()
      return { op: op as CompareOp, attrPath, compValue: literal === 'null' ? null : literal === 'true' }
    }
    throw invalid(`Expected a value (a "string", a number, true, false or null) after ${attrPath} ${op} but found ${this.describe(value)}`)
  }
}

/** Parses a filter; throws a SCIM invalidFilter error saying where it went wrong. */
export function parseFilter (input: string): Filter {
  if (input.length > MAX_FILTER_LENGTH) throw invalid(`The filter is longer than ${MAX_FILTER_LENGTH} characters`)
  return new Parser(tokenize(input)).parseAll()
}

/** A PATCH path: an attribute (`name.givenName`), or a value path with an optional sub-attribute (`emails[type eq "work"].value`). */
export interface PatchPath {
  /** Lowercased attribute name, without the schema URN: `emails`, `name`. */
  attr: string
  /** Lowercased sub-attribute: `givenname`, `value`. */
  sub: string | null
  /** The value filter of a value path. */
  filter: Filter | null
  /** The schema URN the path named, lowercased (null when none). */
  urn: string | null
}

const invalidPath = (detail: string): Error => scimError('invalidPath', detail)

/** Splits `urn:…:User:name.givenName` into its lowercased URN, attribute and sub-attribute. */
export function splitAttrPath (path: string): { urn: string | null, attr: string, sub: string | null } {
  const lower = path.toLowerCase()
  // A schema URI prefix is all up to the last colon (attribute names have none).
  const colon = lower.lastIndexOf(':')
  const urn = colon < 0 ? null : lower.slice(0, colon)
  const rest = lower.slice(colon + 1)
  const dot = rest.indexOf('.')
  return dot < 0 ? { urn, attr: rest, sub: null } : { urn, attr: rest.slice(0, dot), sub: rest.slice(dot + 1) }
}

/** Parses a PATCH operation's path; throws SCIM invalidPath. */
export function parsePatchPath (path: string): PatchPath {
  if (path.length > MAX_FILTER_LENGTH) throw invalidPath('The path is too long')
  const open = path.indexOf('[')
  if (open < 0) {
    if (!ATTR_PATH.test(path)) throw invalidPath(`Not an attribute path: ${JSON.stringify(path)}`)
    return { ...splitAttrPath(path), filter: null }
  }
  const close = path.lastIndexOf(']')
  const head = path.slice(0, open)
  const tail = path.slice(close + 1)
  if (close < open || !ATTR_PATH.test(head) || splitAttrPath(head).sub !== null || (tail !== '' && !/^\.[A-Za-z][\w$-]*$/.test(tail))) {
    throw invalidPath(`Not a value path: ${JSON.stringify(path)}`)
  }
  let filter: Filter
  try {
    filter = parseFilter(path.slice(open + 1, close))
  } catch (err) {
    throw invalidPath(`The value filter of ${JSON.stringify(path)} is not valid: ${(err as Error).message}`)
  }
  const { urn, attr } = splitAttrPath(head)
  return { urn, attr, sub: tail === '' ? null : tail.slice(1).toLowerCase(), filter }
}
