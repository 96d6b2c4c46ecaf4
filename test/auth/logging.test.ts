import t from 'tap'
import { admins } from '../../db/schema/admins.ts'
import { redactUrl, serializeError } from '../../src/server-options.ts'
import { build, createAdmin } from '../helper.ts'

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
    await app.db.insert(admins).values({ email: admin.email, name: 'someone-else', passwordHash: '$argon2id$SECRET-HASH' })
  } catch (err) {
    failure = err
  }
  t.match(String((failure as Error).message), /SECRET-HASH/, 'drizzle puts the parameters in its message')
  const serialized = serializeError(failure as Error)
  const logged = JSON.stringify(serialized)
  t.notMatch(logged, /SECRET-HASH/)
  t.notMatch(logged, new RegExp(admin.email))
  t.equal(serialized.params, '[redacted]')
  t.match(serialized.message, /^Failed query: insert into "admins" .*\nparams: \[redacted\]: duplicate key value violates unique constraint/)
  t.match(serialized.stack, /\nparams: \[redacted\]\n {4}at /)

  const plain = serializeError(new Error('plain failure'))
  t.equal(plain.message, 'plain failure', 'other errors are as pino serializes them')
})
