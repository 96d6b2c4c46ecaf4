import t from 'tap'
import { BoundedCache, ENTRY_OVERHEAD, stringBytes } from '../src/infra/bounded-cache.ts'

const strings = (maxEntries: number, maxBytes: number) =>
  new BoundedCache<string, string>({ maxEntries, maxBytes, sizeOf: (k, v) => ENTRY_OVERHEAD + stringBytes(k) + stringBytes(v) })

t.test('filled past its entry bound, the least recently used entries go first', async (t) => {
  const cache = strings(3, 1_000_000)
  for (const k of ['a', 'b', 'c']) cache.set(k, k.toUpperCase())
  t.equal(cache.get('a'), 'A', 'a is now the most recently used')
  cache.set('d', 'D')
  t.equal(cache.size, 3)
  t.same([...cache.keys()], ['c', 'a', 'd'], 'b, the least recently used, went')
  t.equal(cache.get('b'), undefined)
  for (let i = 0; i < 1000; i++) cache.set(`k${i}`, 'v')
  t.equal(cache.size, 3, 'never more than the bound')
  t.same([...cache.keys()], ['k997', 'k998', 'k999'])
})

t.test('filled past its byte bound, entries go until the rest fits; an entry alone over the bound is not kept', async (t) => {
  const one = ENTRY_OVERHEAD + stringBytes('k0') + stringBytes('x'.repeat(100))
  const cache = strings(1000, 3 * one)
  for (let i = 0; i < 5; i++) cache.set(`k${i}`, 'x'.repeat(100))
  t.equal(cache.size, 3, 'three entries fit the bytes, though 1000 would fit the count')
  t.equal(cache.bytes, 3 * one)
  t.same([...cache.keys()], ['k2', 'k3', 'k4'])
  t.equal(cache.set('huge', 'x'.repeat(10_000)), false, 'larger than the whole bound')
  t.equal(cache.has('huge'), false)
  t.equal(cache.size, 3, 'and nothing was evicted for it')
  t.equal(cache.set('k5', 'x'.repeat(250)), true)
  t.same([...cache.keys()], ['k4', 'k5'], 'a larger entry evicts as many as it needs')
  t.ok(cache.bytes <= 3 * one)
})

t.test('replacing, deleting and clearing keep the byte count exact', async (t) => {
  const cache = strings(10, 10_000)
  cache.set('a', 'x')
  cache.set('a', 'xxxxxxxx')
  t.equal(cache.size, 1)
  t.equal(cache.bytes, ENTRY_OVERHEAD + stringBytes('a') + stringBytes('xxxxxxxx'))
  t.equal(cache.delete('a'), true)
  t.equal(cache.delete('a'), false)
  t.equal(cache.bytes, 0)
  cache.set('b', 'y')
  cache.clear()
  t.equal(cache.size, 0)
  t.equal(cache.bytes, 0)
  t.equal(cache.get('b'), undefined)
})
