import t from 'tap'
import fc from 'fast-check'
import { hmac } from '../src/infra/crypto.ts'
import { CLUSTERED_MATCHES, createLister, MAX_WINDOW, planSearch, type ListSpec } from '../src/infra/paging/lister.ts'
import pg from 'pg'
import { containsFraction, matchFraction, MEMO_BYTES, MEMO_TERMS, statisticsReader, termMemo, type SearchStatistics } from '../src/infra/paging/estimate.ts'
import { instants, iso, isoOfTimestamp, utc } from '../src/infra/sql.ts'
import { build, waitUntil } from './helper.ts'

const spec: ListSpec = {
  name: 'things',
  from: 'things',
  columns: 'id, label',
  id: 'id',
  sorts: { createdAt: { expr: 'created_at', type: 'timestamptz', key: 'created_at::text' }, label: { expr: 'label', type: 'text' } },
  defaultSort: 'createdAt',
  filters: {
    label: { sql: (p) => `label = ${p}` },
    q: { sql: (p) => `label LIKE ${p}`, param: (v) => `%${String(v)}%`, search: { from: (p) => `search(${p}) AS things`, columns: ['label'], term: (v) => String(v), clusters: ['label'] } }
  }
}
const ID = '00000000-0000-4000-8000-000000000001'

t.test('statements: one SQL text per shape, named (but a search\'s count), keyset after the cursor, no OFFSET, a list\'s instants read by `instants`', async (t) => {
  const lister = createLister(spec, 'secret-key-for-tests')
  const first = lister.statements({ limit: 10 })
  t.same(first.page, { name: 'things_1', text: 'SELECT id, label, created_at::text AS "_k" FROM things ORDER BY created_at ASC, id ASC LIMIT $1', values: [11], types: instants })
  t.equal(first.count, null)
  t.equal(first.fallback, null, 'no search, no fallback')
  t.same(lister.statements({ limit: 3 }).page.name, 'things_1', 'the same shape reuses its statement')

  const cursor = lister.encode({ limit: 10, sort: '-label', label: 'x' }, 'b', ID)
  const after = lister.statements({ limit: 10, sort: '-label', label: 'x', cursor, count: true })
  t.same(after.page, {
    name: 'things_2',
    text: 'SELECT id, label, label AS "_k" FROM things WHERE label = $1 AND (label, id) < ($2::text, $3::uuid) ORDER BY label DESC, id DESC LIMIT $4',
    values: ['x', 'b', ID, 11],
    types: instants
  })
  t.same(after.count, { name: 'things_3', text: 'SELECT count(*)::int AS total FROM things WHERE label = $1', values: ['x'] })

  const searched = lister.statements({ limit: 5, q: 'a_b', label: 'x', count: true })
  t.same(searched.page, {
    name: 'things_4',
    text: 'SELECT id, label, "_k" FROM (SELECT *, created_at::text AS "_k", created_at AS "_s" FROM things WHERE label = $1 ORDER BY created_at ASC, id ASC LIMIT $3) AS things' +
      ' WHERE label LIKE $2 ORDER BY "_s" ASC, id ASC LIMIT $4',
    values: ['x', '%a_b%', 120, 6],
    types: instants
  }, 'a search: a window of the sort order (20 rows per row of the page unless told), parameters transformed')
  t.same(searched.fallback, {
    name: 'things_5',
    text: 'SELECT id, label, created_at::text AS "_k" FROM (SELECT *, created_at AS "_s" FROM search($2) AS things WHERE label = $1 ORDER BY created_at ASC, id ASC LIMIT $3) AS things' +
      ' ORDER BY "_s" ASC, id ASC',
    values: ['x', '%a_b%', 6],
    types: instants
  }, 'and the read through the search index, the page cut from the sorted matches before its columns are made')
  t.same(searched.count, { name: undefined, text: 'SELECT count(*)::int AS total FROM things WHERE label = $1 AND label LIKE $2', values: ['x', '%a_b%'] }, 'the count is planned for its term')

  const clustered = lister.statements({ limit: 5, q: 'a_b', label: 'x', sort: 'label' })
  t.match(clustered.page, { name: 'things_6', text: /FROM things WHERE label = \$1 ORDER BY label ASC, id ASC LIMIT \$3\)/, values: ['x', '%a_b%', 120, 6] })
  t.same(clustered.fallback, {
    name: 'things_7',
    text: 'SELECT id, label, label AS "_k" FROM (SELECT *, label AS "_s" FROM search($2) AS things WHERE label = $1 ORDER BY label ASC, id ASC LIMIT $3) AS things ORDER BY "_s" ASC, id ASC',
    values: ['x', '%a_b%', 6],
    types: instants
  }, 'sorted on the searched column the same')
  for (const s of [first, after, searched, clustered]) t.notMatch(`${s.page.text} ${s.fallback?.text ?? ''}`, /OFFSET/i)
  t.same(await lister.plan({ limit: 5, q: 'a' }), { first: 'window', window: 120, fraction: null }, 'no statistics (no database): a window first')
  t.equal(await lister.plan({ limit: 5 }), null, 'no search, no plan')
})

/** Statistics of one searched column: 100 histogram values, one of them holding "rare"; a common value 'hot' for 30 % of the rows. */
const STATS: SearchStatistics = {
  rows: 1_000_000,
  columns: [{
    nullFraction: 0.1,
    values: ['hot'],
    frequencies: [0.3],
    histogram: Array.from({ length: 100 }, (_, i) => i === 7 ? 'a rare one' : i < 50 ? `user${i}` : `name ${i}`)
  }]
}

const close = (a: number | null | undefined, b: number): boolean => Math.abs((a ?? NaN) - b) < 1e-12

t.test('how common a term is, from pg_stats as the planner reads it', async (t) => {
  const column = STATS.columns[0] as SearchStatistics['columns'][0]
  t.ok(close(containsFraction(column, 'hot'), 0.3), 'a common value')
  t.ok(close(containsFraction(column, 'rare'), 1 / 100 * 0.6), 'one histogram value in a hundred, over the rows neither null nor common')
  t.ok(close(containsFraction(column, 'user'), 0.49 * 0.6))
  t.ok(close(containsFraction(column, 'zzz'), 0.5 / 100 * 0.6), 'never sampled: half a sample')
  t.equal(containsFraction({ nullFraction: 0, values: [], frequencies: [], histogram: [] }, 'x'), 0, 'no histogram: nothing known to match')
  t.equal(containsFraction({ nullFraction: 0, values: ['x', 'xy'], frequencies: [0.7, 0.6], histogram: ['x'] }, 'x'), 1, 'never more than every row')
  const twice = { nullFraction: 0, values: [], frequencies: [], histogram: ['abab', 'ab', 'b', 'a\nb'] }
  t.equal(containsFraction(twice, 'ab'), 2 / 4, 'a value holding the term twice counts once')
  t.equal(containsFraction(twice, 'a\nb'), 1 / 4, 'a term with a line break matches within its value')
  t.equal(containsFraction(twice, 'b\0a'), 0.5 / 4, 'a term never spans two values: none holds it (half a sample)')
  t.equal(containsFraction(twice, 'b'), 1, 'up to the last value')
  const two: SearchStatistics = { rows: 10, columns: [column, { nullFraction: 0, values: [], frequencies: [], histogram: ['rare', 'b'] }] }
  t.ok(close(matchFraction(two, 'rare'), 1 - (1 - 0.006) * (1 - 0.5)), 'either column: the two taken as independent')
  t.ok(close(matchFraction(two, 'rare'), 1 - (1 - 0.006) * (1 - 0.5)), 'the same again (remembered)')
  const many: SearchStatistics = { rows: 10, columns: [{ nullFraction: 0, values: [], frequencies: [], histogram: ['x1', 'y'] }] }
  for (let i = 0; i < 1100; i++) matchFraction(many, `term ${i}`)
  t.equal(matchFraction(many, 'x'), 0.5, 'still right after a thousand other terms')
  const memo = termMemo(many)
  t.equal(memo.size, MEMO_TERMS, 'the memo holds at most MEMO_TERMS terms')
  t.notOk(memo.has('term 0'), 'the least recently used went first')
  t.ok(memo.has('x') && memo.has('term 1099'))
  const long: SearchStatistics = { rows: 10, columns: [{ nullFraction: 0, values: [], frequencies: [], histogram: ['x1', 'y'] }] }
  for (let i = 0; i < MEMO_TERMS; i++) matchFraction(long, `${'long term '.repeat(10)}${i}`)
  t.ok(termMemo(long).bytes <= MEMO_BYTES, `at most MEMO_BYTES (${termMemo(long).bytes})`)
  t.ok(termMemo(long).size < MEMO_TERMS, `so fewer long terms (${termMemo(long).size})`)
})

t.test('a search plan: the index for a rare term, a window sized for a common one, the index first when sorted by the searched column', async (t) => {
  const rare = planSearch(STATS, 'zzz', 50, false)
  t.match(rare, { first: 'index', window: MAX_WINDOW }, '3,000 matches against 17,000 rows of the sort order')
  t.ok(close(rare.fraction, 0.003))
  const common = planSearch(STATS, 'user', 50, false)
  t.match(common, { first: 'window', window: Math.ceil(3 * 51 / (0.49 * 0.6)) }, 'a window three times what a page needs')
  t.equal(planSearch({ ...STATS, rows: 100 }, 'user', 50, false).first, 'index', 'few rows: the index')
  t.equal(planSearch(STATS, 'user', 50, true).first, 'window', 'sorted by the column, a common term still reads a window')
  t.equal(planSearch({ ...STATS, rows: 0.99 * CLUSTERED_MATCHES * 51 / 0.294 }, 'user', 50, true).first, 'index', `up to ${CLUSTERED_MATCHES} matches per row of the page: the index`)
  t.same(planSearch(null, 'user', 9, true), { first: 'window', window: 200, fraction: null }, 'no statistics: 20 rows per row of the page')
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

t.test('statistics are read from pg_stats, again once their time is up, and a failed read is no estimate', async (t) => {
  const app = await build(t)
  const read = statisticsReader(app.db, 'users', ['email', 'name'], 0)
  t.equal(await read(), null, 'never analysed: nothing to estimate from')
  await app.db.query('INSERT INTO users (email, name) SELECT \'u\' || i || \'@example.com\', CASE WHEN i % 2 = 0 THEN \'Ann \' || i END FROM generate_series(1, 200) AS i')
  await app.db.query('ANALYZE users')
  t.equal(await read(), null, 'the copy at hand while a fresh one is read')
  await waitUntil(async () => (await read()) !== null, { what: 'the fresh statistics' })
  const stats = await read() as SearchStatistics
  t.equal(stats.rows, 200)
  t.equal(stats.columns.length, 2)
  t.ok(close(stats.columns[1]?.nullFraction, 0.5), 'half the names are null')
  t.ok(stats.columns[0]?.histogram.every((v) => v === v.toLowerCase() && v.endsWith('@example.com')), 'lowercased values of the column')
  const emails = stats.columns[0]?.histogram.length as number
  t.ok(close(matchFraction(stats, 'ann'), 1 - (1 - 0.5 / emails) * 0.5), 'every name there is an Ann; no email sampled has it')

  t.equal(await statisticsReader(app.db, 'no_such_table', ['email'])(), null, 'no such table')
  t.equal(await statisticsReader(app.db, 'users', ['email', 'no_such_column'])(), null, 'a column without statistics')
  const ended = new pg.Pool({ connectionString: app.databaseUrl })
  await ended.end()
  t.equal(await statisticsReader(ended, 'users', ['email'])(), null, 'a failed read')
})

t.test('a list\'s instants (utc, read through `instants`) are iso()\'s text: PostgreSQL\'s to_char for the same instant', async (t) => {
  const app = await build(t)
  // Seconds from the epoch (years 1 to 9999) and microseconds, with the fractions PostgreSQL shortens (trailing zeros) often.
  const micros = fc.oneof(fc.integer({ min: 0, max: 999_999 }), fc.integer({ min: 0, max: 999 }).map((m) => m * 1000), fc.integer({ min: 0, max: 9 }).map((d) => d * 100_000), fc.constant(0))
  const instantsAt = fc.sample(fc.tuple(fc.integer({ min: -62_135_596_800, max: 253_402_300_799 }), micros), 2000)
  const edges: Array<[number, number]> = [[0, 0], [1_733_408_252, 120_000], [1_733_408_252, 999_999], [1_733_408_252, 1], [-1, 999_999], [-62_135_596_800, 0], [253_402_300_799, 999_999], [951_825_600, 500_000]]
  const pairs = [...edges, ...instantsAt]
  const { rows } = await app.db.query<{ list: string, one: string }>({
    text: `SELECT ${utc('x')} AS list, ${iso('x')} AS one FROM (SELECT 'epoch'::timestamptz + make_interval(secs => s) + u * interval '1 microsecond' AS x
      FROM unnest($1::float8[], $2::int[]) AS i(s, u)) AS instants`,
    values: [pairs.map(([s]) => s), pairs.map(([, u]) => u)],
    types: instants
  })
  t.equal(rows.length, pairs.length)
  t.same(rows.filter((r) => r.list !== r.one), [], 'the same text for every instant')
  t.equal(rows[1]?.list, '2024-12-05T14:17:32.120Z', 'a fraction PostgreSQL shortened, padded')
  t.equal(rows[0]?.list, '1970-01-01T00:00:00.000Z', 'no fraction at all')
  t.equal(rows[2]?.list, '2024-12-05T14:17:32.999Z', 'truncated to the millisecond, as iso() does')

  for (const text of ['infinity', '-infinity', '10000-01-01 00:00:00', '0044-03-15 12:00:00 BC', '2026-12-05 14:17:21.1234567', '12/05/2026 14:17:21.303', '2026-12-05T14:17:21', '2026-12-05 14:17']) {
    t.throws(() => isoOfTimestamp(text), RangeError, `refused: ${text}`)
  }
  await t.rejects(app.db.query({ text: `SELECT ${utc("'infinity'::timestamptz")} AS at`, types: instants }), RangeError, 'an instant it cannot show fails the statement')
  t.same((await app.db.query({ text: `SELECT ${utc("'2026-12-05 14:17:21.5+00'::timestamptz")} AS at, 2::int8 AS n`, types: instants })).rows, [{ at: '2026-12-05T14:17:21.500Z', n: '2' }],
    'other types as node-postgres reads them')
})
