/**
 * A Map bounded by entries AND bytes: every in-process cache of Roster is one
 * of these, so that no input (many sessions, long search terms, many tokens)
 * can grow the process past what its bounds say. Least recently used out
 * first: `get` and `set` make an entry the newest (a Map keeps insertion
 * order, so the first key is always the one to evict).
 *
 * Bytes are an estimate made by the caller's `sizeOf` for each entry, key
 * included (`stringBytes` for strings); an entry larger than the whole byte
 * bound is not kept at all.
 */
export interface CacheBounds<K, V> {
  /** Most entries held. */
  maxEntries: number
  /** Most bytes held, as `sizeOf` counts them. */
  maxBytes: number
  /** The bytes one entry holds (key and value). */
  sizeOf: (key: K, value: V) => number
}

/** What a V8 string of this length may occupy, at most (two bytes a character, plus its header). */
export function stringBytes (s: string): number {
  return 16 + 2 * s.length
}

/** Bytes of a Map entry and a small record holding the value, besides the key's and value's own. */
export const ENTRY_OVERHEAD = 64

export class BoundedCache<K, V> {
  private readonly entries = new Map<K, { value: V, bytes: number }>()
  private held = 0

  constructor (readonly bounds: CacheBounds<K, V>) {}

  /** Entries held. */
  get size (): number {
    return this.entries.size
  }

  /** Bytes held (the sum of `sizeOf` over the entries). */
  get bytes (): number {
    return this.held
  }

  get (key: K): V | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    this.entries.delete(key)
    this.entries.set(key, entry)
    return entry.value
  }

  /** The value, without making it the most recently used (for caches that evict by the order of writes). */
  peek (key: K): V | undefined {
    return this.entries.get(key)?.value
  }

  has (key: K): boolean {
    return this.entries.has(key)
  }

  /** Keeps the entry (the newest), evicting the least recently used past either bound; false when it alone exceeds the byte bound. */
  set (key: K, value: V): boolean {
    this.delete(key)
    const bytes = this.bounds.sizeOf(key, value)
    if (bytes > this.bounds.maxBytes) return false
    this.entries.set(key, { value, bytes })
    this.held += bytes
    while (this.entries.size > this.bounds.maxEntries || this.held > this.bounds.maxBytes) {
      this.delete(this.entries.keys().next().value as K)
    }
    return true
  }

  delete (key: K): boolean {
    const entry = this.entries.get(key)
    if (entry === undefined) return false
    this.entries.delete(key)
    this.held -= entry.bytes
    return true
  }

  clear (): void {
    this.entries.clear()
    this.held = 0
  }

  keys (): IterableIterator<K> {
    return this.entries.keys()
  }
}
