import t from 'tap'
import { isDatabaseUnavailable, transaction, type Database } from '../src/infra/database.ts'
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

t.test('the transaction helper always gives its client back: destroyed when its connection or its ROLLBACK failed', async (t) => {
  /** A pool of one client whose statements answer as `answer` says; records what release() got. */
  const pool = (answer: (text: string) => Error | null) => {
    const released: unknown[] = []
    const sent: string[] = []
    const client = {
      query: async (text: string) => {
        sent.push(text)
        const err = answer(text)
        if (err !== null) throw err
        return { rows: [] }
      },
      release: (err?: unknown) => { released.push(err) }
    }
    return { db: { connect: async () => client } as unknown as Database, released, sent }
  }
  const ok = pool(() => null)
  t.equal(await transaction(ok.db, async () => 42), 42)
  t.same(ok.sent, ['BEGIN', 'COMMIT'])
  t.same(ok.released, [undefined], 'committed: kept')

  const own = pool(() => null)
  await t.rejects(transaction(own.db, async () => { throw new Error('changed my mind') }), /changed my mind/)
  t.same(own.sent, ['BEGIN', 'ROLLBACK'])
  t.same(own.released, [undefined], 'rolled back for its own reasons: kept')

  const lost = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })
  const dead = pool(() => null)
  await t.rejects(transaction(dead.db, async () => { throw lost }), lost)
  t.same(dead.released, [lost], 'its connection failed: destroyed')

  const noRollback = new Error('Connection terminated')
  const broken = pool((text) => text === 'ROLLBACK' ? noRollback : text === 'BEGIN' ? new Error('Client has encountered a connection error') : null)
  await t.rejects(transaction(broken.db, async () => 1), /connection error/)
  t.same(broken.sent, ['BEGIN', 'ROLLBACK'], 'a failed BEGIN still rolls back and gives the client back')
  t.same(broken.released, [noRollback], 'its ROLLBACK failed: destroyed')
})
