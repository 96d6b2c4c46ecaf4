import t from 'tap'
import { hmac } from '../src/infra/crypto.ts'
import { createLister, type ListSpec } from '../src/infra/paging/lister.ts'

const spec: ListSpec = {
  name: 'things',
  from: 'things',
  columns: 'id, label',
  id: 'id',
  sorts: { createdAt: { expr: 'created_at', type: 'timestamptz', key: 'created_at::text' }, label: { expr: 'label', type: 'text' } },
  defaultSort: 'createdAt',
  filters: {
    label: { sql: (p) => `label = ${p}` },
    q: { sql: (p) => `label LIKE ${p}`, param: (v) => `%${String(v)}%`, search: { from: (p) => `search(${p}) AS things`, clusters: ['label'] } }
  }
}
const ID = '00000000-0000-4000-8000-000000000001'

t.test('statements: one SQL text per shape, named unless planned per request, keyset after the cursor, no OFFSET', async (t) => {
  const lister = createLister(spec, 'secret-key-for-tests')
  const first = lister.statements({ limit: 10 })
  t.same(first.page, { name: 'things_1', text: 'SELECT id, label, created_at::text AS "_k" FROM things ORDER BY created_at ASC, id ASC LIMIT $1', values: [11] })
  t.equal(first.count, null)
  t.equal(first.fallback, null, 'no search, no fallback')
  t.same(lister.statements({ limit: 3 }).page.name, 'things_1', 'the same shape reuses its statement')

  const cursor = lister.encode({ limit: 10, sort: '-label', label: 'x' }, 'b', ID)
  const after = lister.statements({ limit: 10, sort: '-label', label: 'x', cursor, count: true })
  t.same(after.page, {
    name: 'things_2',
    text: 'SELECT id, label, label AS "_k" FROM things WHERE label = $1 AND (label, id) < ($2::text, $3::uuid) ORDER BY label DESC, id DESC LIMIT $4',
    values: ['x', 'b', ID, 11]
  })
  t.same(after.count, { name: 'things_3', text: 'SELECT count(*)::int AS total FROM things WHERE label = $1', values: ['x'] })

  const searched = lister.statements({ limit: 5, q: 'a_b', label: 'x', count: true })
  t.same(searched.page, {
    name: undefined,
    text: 'SELECT id, label, created_at::text AS "_k" FROM things WHERE label LIKE $2 AND label = $1 ORDER BY created_at ASC, id ASC LIMIT $3',
    values: ['x', '%a_b%', 6]
  }, 'a search is planned for its term: unnamed, parameters transformed')
  t.equal(searched.fallback, null)
  t.same(searched.count, { name: undefined, text: 'SELECT count(*)::int AS total FROM things WHERE label = $1 AND label LIKE $2', values: ['x', '%a_b%'] })

  const clustered = lister.statements({ limit: 5, q: 'a_b', label: 'x', sort: 'label' })
  t.same(clustered.page, {
    name: 'things_4',
    text: 'WITH win AS MATERIALIZED (SELECT *, label AS "_k", label AS "_s" FROM things WHERE label = $1 ORDER BY label ASC, id ASC LIMIT $3)' +
      ' SELECT p.*, c.n AS "_n" FROM (SELECT count(*)::int AS n FROM win) c' +
      ' LEFT JOIN LATERAL (SELECT id, label, "_k", "_s" FROM win WHERE label LIKE $2 ORDER BY "_s" ASC, id ASC LIMIT $4) p ON true' +
      ' ORDER BY p."_s" ASC, p.id ASC',
    values: ['x', '%a_b%', 120, 6]
  }, 'sorted on the searched column: a window of the sort order first, 20 rows per row of the page')
  t.same(clustered.fallback, {
    name: 'things_5',
    text: 'SELECT id, label, label AS "_k" FROM search($2) AS things WHERE label = $1 ORDER BY label ASC, id ASC LIMIT $3',
    values: ['x', '%a_b%', 6]
  }, 'then the search index')
  for (const s of [first, after, searched, clustered]) t.notMatch(`${s.page.text} ${s.fallback?.text ?? ''}`, /OFFSET/i)
})

t.test('cursors are bound to their list, sort, filters and key', async (t) => {
  const lister = createLister(spec, 'secret-key-for-tests')
  const query = { limit: 10, label: 'x' }
  const cursor = lister.encode(query, '2024-01-01 00:00:00.123456+00', ID)
  t.match(cursor, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/)
  t.same(lister.statements({ ...query, cursor }).page.values, ['x', '2024-01-01 00:00:00.123456+00', ID, 11], 'microseconds survive')

  const refused = (q: Record<string, unknown>, why: string): void => {
    t.throws(() => lister.statements({ limit: 10, ...q }), { code: 'ROSTER_INVALID_CURSOR', statusCode: 400 }, why)
  }
  refused({ label: 'x', sort: '-createdAt', cursor }, 'another sort')
  refused({ label: 'y', cursor }, 'another filter value')
  refused({ cursor }, 'a filter dropped')
  refused({ label: 'x', q: 'z', cursor }, 'a filter added')
  t.throws(() => createLister({ ...spec, name: 'other' }, 'secret-key-for-tests').statements({ ...query, cursor }), { code: 'ROSTER_INVALID_CURSOR' }, 'another list')
  t.throws(() => createLister(spec, 'another-secret-key').statements({ ...query, cursor }), { code: 'ROSTER_INVALID_CURSOR' }, 'another key')

  const [payload, sig] = cursor.split('.') as [string, string]
  refused({ label: 'x', cursor: `${payload}A.${sig}` }, 'payload altered')
  refused({ label: 'x', cursor: `${payload}.${sig.slice(1)}A` }, 'signature altered')
  refused({ label: 'x', cursor: `.${sig}` }, 'no payload')
  refused({ label: 'x', cursor: 'no-dot-at-all' }, 'no signature')

  // Correctly signed, yet not a position: only a bug or an old version could make one; still a 400.
  const signed = (raw: string): string => {
    const p = Buffer.from(raw).toString('base64url')
    return `${p}.${hmac('secret-key-for-tests', `things\ncreatedAt\nlabel=x\n${p}`)}`
  }
  t.equal(lister.statements({ ...query, cursor: signed(JSON.stringify(['k', ID])) }).page.values?.length, 4, 'the signing scheme, reproduced')
  for (const raw of ['not json', '{"a":1}', '["only one"]', '[1, 2]', `["k", "${ID}", 3]`]) refused({ label: 'x', cursor: signed(raw) }, `signed ${raw}`)
})

t.test('the Link header keeps limit, sort, filters and count', async (t) => {
  const lister = createLister(spec, 'secret-key-for-tests')
  t.equal(lister.nextLink('/things', { limit: 20, sort: '-label', q: 'a b&c', count: true }, 'CUR.SOR'), '</things?limit=20&sort=-label&q=a+b%26c&count=true&cursor=CUR.SOR>; rel="next"')
  t.equal(lister.nextLink('/things', { limit: 50, count: false }, 'c'), '</things?limit=50&cursor=c>; rel="next"')
})
