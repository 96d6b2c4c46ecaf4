import t from 'tap'
import { build, loginAs } from '../helper.ts'
import { count, problem, usersFixture, type UserJson } from './helpers.ts'

const ORDER: Record<string, string> = {
  createdAt: 'created_at, id',
  '-createdAt': 'created_at DESC, id DESC',
  email: 'email, id',
  '-email': 'email DESC, id DESC',
  name: "coalesce(name, ''), id",
  '-name': "coalesce(name, '') DESC, id DESC"
}

/** The next page's URL from a Link header, or null. */
function next (link: unknown): string | null {
  if (link === undefined) return null
  const m = /^<([^>]+)>; rel="next"$/.exec(String(link))
  if (m === null) throw new Error(`malformed Link: ${String(link)}`)
  return m[1] as string
}

t.test('1,000 users in every sort order, with inserts between pages: no duplicates, no gaps, in order', async (t) => {
  const { app, admin, auth } = await usersFixture(t)
  // Ties everywhere: 20 users share each created_at, names repeat and some are null.
  await app.pg.pool.query(`
    INSERT INTO users (email, name, active, created_by, created_at)
    SELECT 'user' || lpad(i::text, 4, '0') || '@example.com',
           CASE WHEN i % 10 = 0 THEN NULL ELSE 'Name ' || (i % 37) END,
           i % 3 <> 0, $1, timestamptz '2024-01-01' + (i % 50) * interval '1 second' + interval '0.000123 second'
    FROM generate_series(1, 1000) AS i`, [admin.id])
  const before = (await app.pg.pool.query<{ id: string }>('SELECT id FROM users')).rows.map((r) => r.id)
  t.equal(before.length, 1000)
  let inserted = 0

  for (const sort of Object.keys(ORDER)) {
    const seen: string[] = []
    let url: string | null = `/users?limit=73&sort=${sort}`
    let pages = 0
    while (url !== null) {
      const res = await app.inject({ url, headers: auth() })
      t.equal(res.statusCode, 200)
      const rows = res.json() as UserJson[]
      t.ok(rows.length <= 73)
      seen.push(...rows.map((u) => u.id))
      url = next(res.headers.link)
      if (url !== null) {
        t.equal(rows.length, 73, 'only the last page is short')
        t.match(url, new RegExp(`^/users\\?limit=73&sort=${sort.replace('-', '\\-')}&cursor=`))
      }
      // Concurrent inserts: before, inside and after the part already read.
      for (const email of [`a-${inserted}@example.com`, `m-${inserted}@example.com`, `zz-${inserted}@example.com`]) {
        await app.inject({ method: 'POST', url: '/users', headers: auth(), payload: { email, name: inserted % 2 === 0 ? 'Name 5' : null } })
      }
      inserted++
      pages++
    }
    t.ok(pages >= 14, `${sort}: ${pages} pages`)
    t.equal(new Set(seen).size, seen.length, `${sort}: no row twice`)
    const missing = before.filter((id) => !seen.includes(id))
    t.same(missing, [], `${sort}: every row that existed before is there`)
    const { rows } = await app.pg.pool.query<{ id: string }>(`SELECT id FROM users WHERE id = ANY($1::uuid[]) ORDER BY ${ORDER[sort] as string}`, [seen])
    t.same(seen, rows.map((r) => r.id), `${sort}: in order, ties broken by id`)
  }
  t.equal(await count(app, 'users'), 1000 + inserted * 3)
})

t.test('limit, count and the last page', async (t) => {
  const { app, auth, createUser } = await usersFixture(t)
  const empty = await app.inject({ url: '/users?count=true', headers: auth() })
  t.same(empty.json(), [], 'an empty list is an empty array')
  t.equal(empty.headers['x-total-count'], '0')
  t.equal(empty.headers.link, undefined)

  for (let i = 0; i < 55; i++) await createUser({ email: `u${i}@example.com` })
  const first = await app.inject({ url: '/users', headers: auth() })
  t.equal(first.json().length, 50, 'default limit 50')
  t.equal(first.headers['x-total-count'], undefined, 'no count unless asked')
  const second = await app.inject({ url: next(first.headers.link) as string, headers: auth() })
  t.equal(second.json().length, 5)
  t.equal(second.headers.link, undefined, 'no Link on the last page')

  const exact = await app.inject({ url: '/users?limit=55&count=true', headers: auth() })
  t.equal(exact.json().length, 55)
  t.equal(exact.headers.link, undefined, 'a page that ends exactly at the last row has no next page')
  t.equal(exact.headers['x-total-count'], '55')
  const counted = await app.inject({ url: '/users?limit=10&count=true', headers: auth() })
  t.match(counted.headers.link, /[?&]count=true&cursor=/, 'the next page counts too')
  t.equal(counted.headers['x-total-count'], '55')

  t.equal((await app.inject({ url: '/users?limit=200', headers: auth() })).statusCode, 200)
  for (const q of ['limit=0', 'limit=201', 'limit=x', 'sort=age', 'sort=--email', 'count=maybe', 'offset=10', 'page=2', 'createdAfter=yesterday', 'active=1x']) {
    const res = await app.inject({ url: `/users?${q}`, headers: auth() })
    t.equal(res.statusCode, 400, q)
    t.equal(problem(res).code, 'ROSTER_VALIDATION_FAILED')
  }
})

t.test('filters: email, q, active, createdAfter, createdBefore; combined and paged', async (t) => {
  const { app, admin, auth, createUser } = await usersFixture(t)
  await app.pg.pool.query(`
    INSERT INTO users (email, name, active, created_by, created_at) VALUES
      ('Ann.Smith@example.com', 'Ann Smith', true, $1, '2024-01-01T00:00:00Z'),
      ('bob@example.com', 'Bob JONES', false, $1, '2024-02-01T00:00:00Z'),
      ('carl@smith.org', NULL, true, $1, '2024-03-01T00:00:00Z'),
      ('100%_real@example.com', 'Percent', true, $1, '2024-04-01T00:00:00Z'),
      ('1000xreal@example.com', 'Lookalike', true, $1, '2024-05-01T00:00:00Z')`, [admin.id])
  const emails = async (query: string): Promise<string[]> => {
    const res = await app.inject({ url: `/users?${query}`, headers: auth() })
    t.equal(res.statusCode, 200, query)
    return (res.json() as UserJson[]).map((u) => u.email)
  }
  t.same(await emails('email=ann.smith@EXAMPLE.com'), ['Ann.Smith@example.com'], 'email: exact, case-insensitive')
  t.same(await emails('email=ann'), [], 'email: not a substring match')
  t.same(await emails('q=SMITH'), ['Ann.Smith@example.com', 'carl@smith.org'], 'q: in email or name, case-insensitive')
  t.same(await emails('q=jones'), ['bob@example.com'], 'q: in the name')
  t.same(await emails('q=%25_'), ['100%_real@example.com'], 'q: % and _ are literal')
  t.same(await emails('q=0_r'), [], 'q: _ matches only _')
  t.same(await emails('q=%5C'), [], 'q: a backslash is literal')
  t.same(await emails('active=false'), ['bob@example.com'])
  t.same(await emails('active=true&q=smith'), ['Ann.Smith@example.com', 'carl@smith.org'])
  t.same(await emails('createdAfter=2024-02-01T00:00:00Z&createdBefore=2024-04-01T00:00:00Z'), ['bob@example.com', 'carl@smith.org'], 'createdAfter inclusive, createdBefore exclusive')
  t.same(await emails('createdBefore=2024-01-01T00:00:00Z'), [])
  t.same(await emails('createdAfter=2024-04-15T00:00:00%2B02:00'), ['1000xreal@example.com'], 'any offset')
  const { rows: expected } = await app.pg.pool.query<{ email: string }>("SELECT email FROM users WHERE email LIKE '%example%' ORDER BY email DESC, id DESC")
  t.same(await emails('q=example&sort=-email'), expected.map((r) => r.email), 'filtered and sorted as asked')

  // Pages keep their filters.
  for (let i = 0; i < 7; i++) await createUser({ email: `page${i}@filter.test`, active: i % 2 === 0 })
  const first = await app.inject({ url: '/users?q=filter.test&active=true&limit=2&count=true', headers: auth() })
  t.equal(first.headers['x-total-count'], '4')
  const link = next(first.headers.link) as string
  t.match(link, /q=filter\.test/)
  t.match(link, /active=true/)
  const all = [...first.json() as UserJson[]]
  for (let url: string | null = link; url !== null;) {
    const res = await app.inject({ url, headers: auth() })
    all.push(...res.json() as UserJson[])
    url = next(res.headers.link)
  }
  t.same(all.map((u) => u.email), ['page0@filter.test', 'page2@filter.test', 'page4@filter.test', 'page6@filter.test'])
  for (const q of ['q=', `q=${'x'.repeat(101)}`, 'q=%00', `email=${'x'.repeat(255)}`, 'email=a%00b']) {
    t.equal((await app.inject({ url: `/users?${q}`, headers: auth() })).statusCode, 400, q)
  }
})

t.test('a tampered or foreign cursor is a 400', async (t) => {
  const { app, auth, createUser } = await usersFixture(t)
  for (let i = 0; i < 3; i++) await createUser({ email: `u${i}@example.com`, name: `U${i}` })
  const cursorOf = async (url: string): Promise<string> => {
    const res = await app.inject({ url, headers: auth() })
    return new URLSearchParams((next(res.headers.link) as string).split('?')[1]).get('cursor') as string
  }
  const cursor = await cursorOf('/users?limit=1')
  t.equal((await app.inject({ url: `/users?limit=1&cursor=${cursor}`, headers: auth() })).statusCode, 200, 'the genuine cursor works')
  t.equal((await app.inject({ url: `/users?limit=5&count=true&cursor=${cursor}`, headers: auth() })).statusCode, 200, 'with another limit or count too')

  const [payload, sig] = cursor.split('.') as [string, string]
  const [key, id] = JSON.parse(Buffer.from(payload, 'base64url').toString()) as [string, string]
  const forged = Buffer.from(JSON.stringify([key, '00000000-0000-4000-8000-000000000000'])).toString('base64url')
  const flipped = sig.slice(0, -1) + (sig.endsWith('A') ? 'B' : 'A')
  const tries: Array<[string, string]> = [
    ['another position, old signature', `/users?limit=1&cursor=${forged}.${sig}`],
    ['signature altered', `/users?limit=1&cursor=${payload}.${flipped}`],
    ['from another sort', `/users?limit=1&sort=-createdAt&cursor=${cursor}`],
    ['with other filters', `/users?limit=1&active=true&cursor=${cursor}`],
    ['from another list', `/audit-events?limit=1&sort=createdAt&cursor=${cursor}`],
    ['from another list (admins)', `/auth/admins?limit=1&cursor=${cursor}`]
  ]
  t.equal(id.length, 36, 'a cursor holds the last sort key and id')
  t.ok(key.length > 0)
  for (const [what, url] of tries) {
    const res = await app.inject({ url, headers: auth() })
    t.equal(res.statusCode, 400, what)
    t.match(problem(res), { code: 'ROSTER_INVALID_CURSOR', detail: /cursor is not valid/ }, what)
  }
  const filtered = await cursorOf('/users?limit=1&q=u')
  t.equal((await app.inject({ url: `/users?limit=1&q=u&cursor=${filtered}`, headers: auth() })).statusCode, 200)
  t.equal((await app.inject({ url: `/users?limit=1&q=u1&cursor=${filtered}`, headers: auth() })).statusCode, 400, 'a filter value changed')
  t.equal((await app.inject({ url: `/users?limit=1&cursor=${filtered}`, headers: auth() })).statusCode, 400, 'a filter dropped')

  // Signed with another SECRET_KEY: another deployment's cursor.
  const other = await build(t, { databaseUrl: app.databaseUrl, env: { SECRET_KEY: 'another-secret-key-0123456789abcdef' } })
  const { createAdmin, loginAs } = await import('../helper.ts')
  const session = await loginAs(other, await createAdmin(other))
  const foreign = await other.inject({ url: `/users?limit=1&cursor=${cursor}`, headers: session.headers })
  t.equal(foreign.statusCode, 400)
})

t.test('searches page exactly in every order, through a window or the search index, with and without statistics', async (t) => {
  const { app, admin, auth } = await usersFixture(t)
  // 300 users; "needle" in a few of them, far apart in every order. With limit=1 a search reads
  // a window of 40 rows first (no statistics yet), so most pages need the search index.
  await app.pg.pool.query(`
    INSERT INTO users (email, name, created_by, created_at)
    SELECT CASE WHEN i IN (5, 150, 151, 299) THEN 'needle' || i ELSE 'hay' || lpad(i::text, 3, '0') END || '@example.com',
           CASE WHEN i = 77 THEN 'Ned Needleman' ELSE 'Person ' || i END,
           $1, timestamptz '2024-01-01' + i * interval '1 minute'
    FROM generate_series(1, 300) AS i`, [admin.id])
  async function everyPage (server: typeof app, headers: Record<string, string>, term: string, what: string): Promise<void> {
    for (const sort of Object.keys(ORDER)) {
      for (const limit of [1, 2, 3, 50]) {
        const seen: string[] = []
        let url: string | null = `/users?q=${term}&limit=${limit}&sort=${sort}`
        while (url !== null) {
          const res: Awaited<ReturnType<typeof app.inject>> = await server.inject({ url, headers })
          t.equal(res.statusCode, 200)
          const page = res.json() as UserJson[]
          t.ok(page.length > 0 && page.length <= limit, 'never an empty or oversized page')
          seen.push(...page.map((u) => u.email))
          url = next(res.headers.link)
        }
        const { rows } = await app.pg.pool.query<{ email: string }>(`SELECT email FROM users WHERE email ILIKE '%' || $1 || '%' OR name ILIKE '%' || $1 || '%' ORDER BY ${ORDER[sort] as string}`, [term])
        t.same(seen, rows.map((r) => r.email), `${what}, q=${term} sort=${sort} limit=${limit}: every match once, in order`)
      }
    }
  }
  t.equal(await app.users.repository.lister.plan({ limit: 1, q: 'needle' }).then((p) => p?.fraction), null, 'no statistics before ANALYZE')
  await everyPage(app, auth(), 'NEEDLE', 'without statistics')

  // Analysed, in a new instance (statistics are read once per STATISTICS_TTL): a rare term goes to the index
  // at once, a common one ("hay", 296 users) reads a window.
  await app.pg.pool.query('ANALYZE users')
  const analysed = await build(t, { databaseUrl: app.databaseUrl })
  const session = await loginAs(analysed, admin)
  t.match(await analysed.users.repository.lister.plan({ limit: 1, q: 'needle' }), { first: 'index' })
  t.match(await analysed.users.repository.lister.plan({ limit: 1, q: 'hay' }), { first: 'window' })
  await everyPage(analysed, session.headers, 'needle', 'with statistics')
  await everyPage(analysed, session.headers, 'hay0', 'with statistics')

  const counted = await app.inject({ url: '/users?q=needle&limit=1&count=true', headers: auth() })
  t.equal(counted.headers['x-total-count'], '5')
  t.same(await (await app.inject({ url: '/users?q=nothing-like-it&limit=1', headers: auth() })).json(), [])
})
