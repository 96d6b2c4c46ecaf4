import t from 'tap'
import { createRequire } from 'node:module'
import { dictionary } from '@zxcvbn-ts/language-common'
import { CompactStringSet, loadCommonPasswords } from '../../src/admins/common-passwords.ts'

t.test('the compact set holds exactly the common-password list, lower case', async (t) => {
  const set = loadCommonPasswords()
  const expected = new Set(dictionary['passwords-common'].map((p) => p.toLowerCase()))
  t.equal(set.size, expected.size, `${set.size} distinct passwords`)
  t.equal([...expected].filter((p) => !set.has(p)).length, 0, 'every listed password is found')
  for (const absent of ['', 'correct horse battery staple', 'password-but-longer', '~~~~', 'PASSWORD']) t.notOk(set.has(absent), `"${absent}" is not in it`)
  t.ok(set.byteLength < 1024 * 1024, `${set.byteLength} bytes`)
  const require = createRequire(import.meta.url)
  t.notOk(require.resolve('@zxcvbn-ts/language-common/dist/passwords.json.cjs') in require.cache, 'the list\'s data file is dropped once read')
})

t.test('members sort and match by their UTF-8 bytes, characters past U+FFFF included', async (t) => {
  const members = ['b', 'a', '\uFFFD', '😀', 'ab', 'é', 'a']
  const set = CompactStringSet.of(members)
  t.equal(set.size, 6, 'duplicates counted once')
  for (const m of members) t.ok(set.has(m), `has ${m}`)
  for (const m of ['', 'c', 'abc', 'e', '😁', '\uFFFF']) t.notOk(set.has(m), `not ${m}`)
  const ascii = CompactStringSet.of(['zeta', 'alpha', 'mid'])
  t.same(['alpha', 'mid', 'zeta', 'beta'].map((m) => ascii.has(m)), [true, true, true, false])
  t.equal(CompactStringSet.of([]).has('x'), false, 'an empty set has nothing')
})
