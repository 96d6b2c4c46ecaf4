import t from 'tap'
import { build, createAdmin, loginAs } from './helper.ts'

interface AdminJson { id: string, email: string, name: string, confirmed: boolean, createdAt: string }

t.test('GET /auth/admins: authenticated, paged, sorted, never a password hash', async (t) => {
  const app = await build(t)
  const me = await createAdmin(app, { email: 'me@example.com', name: 'zed' })
  const { headers } = await loginAs(app, me)
  await createAdmin(app, { email: 'pending@example.com', name: 'amy', confirmed: false })
  for (let i = 0; i < 5; i++) await createAdmin(app, { email: `a${i}@example.com`, name: `admin${i}` })

  t.equal((await app.inject({ url: '/auth/admins' })).statusCode, 401, 'no token, no list (the old service leaked passwords here)')

  const res = await app.inject({ url: '/auth/admins?count=true', headers })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-total-count'], '7')
  const admins = res.json() as AdminJson[]
  t.equal(admins.length, 7)
  for (const a of admins) t.same(Object.keys(a).sort(), ['confirmed', 'createdAt', 'email', 'id', 'name', 'role'])
  t.notMatch(res.body, /argon2|password|hash/i, 'no hash, no password field')
  t.same(admins.filter((a) => !a.confirmed).map((a) => a.email), ['pending@example.com'])

  for (const sort of ['name', '-name', 'email', '-email', 'createdAt', '-createdAt']) {
    const seen: AdminJson[] = []
    let url: string | null = `/auth/admins?limit=2&sort=${sort}`
    while (url !== null) {
      const page: Awaited<ReturnType<typeof app.inject>> = await app.inject({ url, headers })
      seen.push(...page.json() as AdminJson[])
      url = page.headers.link === undefined ? null : (/<([^>]+)>/.exec(String(page.headers.link)) as RegExpExecArray)[1] as string
    }
    const field = sort.replace('-', '') as 'name' | 'email' | 'createdAt'
    const { rows } = await app.pg.pool.query<{ id: string }>(`SELECT id FROM admins ORDER BY ${field === 'createdAt' ? 'created_at' : field} ${sort.startsWith('-') ? 'DESC' : 'ASC'}, id ${sort.startsWith('-') ? 'DESC' : 'ASC'}`)
    t.same(seen.map((a) => a.id), rows.map((r) => r.id), `sorted by ${sort}, four pages`)
  }
  for (const q of ['sort=password', 'limit=0', 'email=x', 'cursor=abc']) {
    t.equal((await app.inject({ url: `/auth/admins?${q}`, headers })).statusCode, 400, q)
  }
})
