import t from 'tap'
import { admins } from '../../db/schema/admins.ts'
import { redactUrl, serializeError } from '../../src/server-options.ts'
import { drizzle } from 'drizzle-orm/node-postgres'
import { adminsConflict } from '../../src/admins/repository.ts'
import { build, createAdmin, loginAs } from '../helper.ts'

t.test('credentials in query strings are redacted from logged URLs', async (t) => {
  t.equal(redactUrl('/auth/confirm?token=abc'), '/auth/confirm?token=[redacted]')
  t.equal(redactUrl('/auth/password/reset?x=1&token=abc-_DEF&y=2'), '/auth/password/reset?x=1&token=[redacted]&y=2')
  t.equal(redactUrl('/x?refresh_token=a&access_token=b&TOKEN=c#frag'), '/x?refresh_token=[redacted]&access_token=[redacted]&TOKEN=[redacted]#frag')
  t.equal(redactUrl('/users?q=token=abc'), '/users?q=token=abc', 'only parameters named so')
  t.equal(redactUrl('/users/token'), '/users/token')
})

t.test('a failed query is logged without its bound parameters', async (t) => {
  const app = await build(t)
  const admin = await createAdmin(app)
  let failure: unknown
  try {
    // drizzle runs only the migrations now (db/migrate.ts); its errors still must not leak their values.
    await drizzle({ client: app.db, casing: 'snake_case' }).insert(admins).values({ email: admin.email, name: 'someone-else', passwordHash: '$argon2id$SECRET-HASH' })
  } catch (err) {
    failure = err
  }
  t.match(String((failure as Error).message), /SECRET-HASH/, 'drizzle puts the parameters in its message')
  const serialized = serializeError(failure as Error)
  const logged = JSON.stringify(serialized)
  t.notMatch(logged, /SECRET-HASH/)
  t.notMatch(logged, new RegExp(admin.email))
  t.equal(serialized.params, undefined, 'the bound values are dropped')
  t.match(serialized.message, /^Failed query: insert into "admins" /, 'the SQL text is kept')
  t.notMatch(serialized.stack, /SECRET-HASH/)

  const bare = serializeError(Object.assign(new Error('Failed query: select $1\nparams: secret'), { query: 'select $1', params: ['secret'] }))
  t.equal(bare.message, 'Failed query: select $1', 'also without a cause')
  const plain = serializeError(new Error('plain failure'))
  t.equal(plain.message, 'plain failure', 'other errors are as pino serializes them')
})

t.test('database errors other than a taken email or name pass through', async (t) => {
  const other = Object.assign(new Error('boom'), { cause: { code: '23505', constraint: 'users_email_lower_key' } })
  t.equal(adminsConflict(other), other)
  t.equal((adminsConflict(new Error('plain')) as Error).message, 'plain')
})

t.test('work left running after an answer logs its failure and never crashes', async (t) => {
  const app = await build(t)
  app.admins.forgotPassword(null as unknown as string)
  await app.admins.drain()
  t.ok(app.logs.lines.some((l) => l.msg === 'sending a password reset email failed' && l.level === 50))
})

t.test('"request completed": method, route pattern, status, duration and the actor, in one line', async (t) => {
  const app = await build(t, { env: { LOG_LEVEL: 'info' } })
  const admin = await createAdmin(app)
  const session = await loginAs(app, admin)
  const created = await app.inject({ method: 'POST', url: '/users', headers: session.headers, payload: { email: 'logged@example.com' } })
  await app.inject({ url: '/no/such/path' })
  const completed = app.logs.lines.filter((l) => l.msg === 'request completed')
  const line = completed.find((l) => l.reqId === created.headers['x-request-id'])
  t.match(line, { res: { statusCode: 201, method: 'POST', route: '/users', actor: { kind: 'admin', id: session.adminId } }, responseTime: Number })
  const login = completed.find((l) => (l.res as { route?: string }).route === '/auth/login')
  t.same(login?.res, { statusCode: 200, method: 'POST', route: '/auth/login' }, 'no actor before authentication')
  t.same(completed.at(-1)?.res, { statusCode: 404, method: 'GET' }, 'no route when none matched')
})
