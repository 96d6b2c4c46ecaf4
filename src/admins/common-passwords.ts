import { createRequire } from 'node:module'

const SURROGATE = /[\uD800-\uDFFF]/

/**
 * A set of strings kept in two typed arrays instead of one JS string per
 * member: the UTF-8 bytes of the distinct members sorted byte-wise, end to
 * end, and the offset where each starts (plus the end of the last). A lookup
 * is a binary search comparing bytes. The ~49,000 common passwords take about
 * 0.6 MB this way, off the V8 heap, where a Set of strings took several MB.
 */
export class CompactStringSet {
  private constructor (private readonly bytes: Buffer, private readonly starts: Uint32Array) {}

  static of (members: Iterable<string>): CompactStringSet {
    const distinct = [...new Set(members)]
    // UTF-16 order (a plain sort) is UTF-8 byte order, unless surrogate pairs (characters past U+FFFF) take part.
    const sorted = distinct.some((m) => SURROGATE.test(m))
      ? distinct.map((m) => Buffer.from(m)).sort(Buffer.compare).map((b) => b.toString())
      : distinct.sort()
    const starts = new Uint32Array(sorted.length + 1)
    let offset = 0
    sorted.forEach((member, i) => {
      starts[i] = offset
      offset += Buffer.byteLength(member)
    })
    starts[sorted.length] = offset
    return new CompactStringSet(Buffer.from(sorted.join('')), starts)
  }

  get size (): number {
    return this.starts.length - 1
  }

  /** Bytes held: the members and their offsets. */
  get byteLength (): number {
    return this.bytes.byteLength + this.starts.byteLength
  }

  has (value: string): boolean {
    const target = Buffer.from(value)
    let low = 0
    let high = this.size - 1
    while (low <= high) {
      const mid = (low + high) >>> 1
      const order = this.bytes.compare(target, 0, target.length, this.starts[mid], this.starts[mid + 1])
      if (order === 0) return true
      if (order < 0) low = mid + 1
      else high = mid - 1
    }
    return false
  }
}

/** The common-password list's data file (CommonJS, so that it can be dropped from memory once read). */
const LIST = '@zxcvbn-ts/language-common/dist/passwords.json.cjs'

/**
 * zxcvbn-ts's `passwords-common` dictionary (@zxcvbn-ts/language-common, about
 * 49,000 passwords), lower case, as a CompactStringSet. Only the list's own
 * data file is read (not the package's other dictionaries), through
 * `require`, and dropped from the module cache afterwards: its source text and
 * its array of strings are garbage once the set is built.
 */
export function loadCommonPasswords (): CompactStringSet {
  const require = createRequire(import.meta.url)
  const path = require.resolve(LIST)
  try {
    const list = require(path) as string[]
    return CompactStringSet.of(list.map((p) => p.toLowerCase()))
  } finally {
    Reflect.deleteProperty(require.cache, path)
  }
}
