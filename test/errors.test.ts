import t from 'tap'
import { isDatabaseUnavailable } from '../src/infra/database.ts'
import { statusTitle } from '../schemas/problem.ts'

t.test('database outages are recognised by code, message or cause', async (t) => {
  t.equal(isDatabaseUnavailable(Object.assign(new Error('x'), { code: '57P01' })), true, 'admin shutdown')
  t.equal(isDatabaseUnavailable(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), true)
  t.equal(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect')), true)
  t.equal(isDatabaseUnavailable(new Error('Query read timeout')), true, 'no answer within query_timeout')
  t.equal(isDatabaseUnavailable(new Error('wrapped', { cause: new Error('Connection terminated unexpectedly') })), true)
  t.equal(isDatabaseUnavailable(new Error('wrapped', { cause: 'not an error' })), false)
  t.equal(isDatabaseUnavailable(Object.assign(new Error('duplicate key'), { code: '23505' })), false)
})

t.test('status titles', async (t) => {
  t.equal(statusTitle(404), 'Not Found')
  t.equal(statusTitle(418), 'Error')
})
