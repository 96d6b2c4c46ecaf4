/**
 * Bulk import (NDJSON and CSV, validated per row, duplicates skipped, a
 * report with line numbers, dry run, limits, one transaction, audited, webhook
 * events) and export (NDJSON and CSV by Accept, every user, importable as it is).
 */
import t from 'tap'
import { PassThrough, Readable } from 'node:stream'
import http from 'node:http'
import { build, createAdmin, loginAs, waitUntil, type TestApp } from '../helper.ts'

const NDJSON = 'application/x-ndjson'

async function fixture (t: Parameters<typeof build>[0], env: Record<string, string> = {}): Promise<{ app: TestApp, headers: { authorization: string } }> {
  const app = await build(t, { env: { WEBHOOK_DISPATCHER: 'false', ...env } })
  return { app, headers: (await loginAs(app, await createAdmin(app))).headers }
}

t.test('NDJSON: valid rows created, invalid and duplicate ones reported by line; audited; webhook events per user', async (t) => {
  const { app, headers } = await fixture(t)
  await app.inject({ method: 'POST', url: '/users', headers, payload: { email: 'taken@example.com' } })
  await app.inject({ method: 'POST', url: '/webhooks', headers, payload: { url: 'https://hooks.example.com/', events: ['user.created'] } })
  const body = [
    '{"email":"ann@example.com","name":"Ann"}',
    '{"email":"not an email"}',
    '',
    '{"email":"TAKEN@example.com"}',
    '{"email":"bo@example.com","active":false,"nickname":"b"}',
    'not json',
    '[1,2]',
    '{"email":"ANN@example.com"}',
    '{"email":"cy@example.com","active":false,"id":"x","createdAt":"y","updatedAt":"z","createdBy":null}'
  ].join('\n')
  const res = await app.inject({ method: 'POST', url: '/users/import', headers: { ...headers, 'content-type': NDJSON }, payload: body })
  t.equal(res.statusCode, 200)
  const report = res.json<{ errors: Array<{ line: number, errors: Array<{ message: string }> }> }>()
  t.match(report, { dryRun: false, rows: 8, created: 2, duplicates: 2, invalid: 4, skipped: [{ line: 4, email: 'TAKEN@example.com' }, { line: 8, email: 'ANN@example.com' }] })
  t.same(report.errors.map((e) => e.line), [2, 5, 6, 7])
  t.match(report.errors, [{ errors: [{ path: '/email', message: 'must match format "email"' }] }, { errors: [{ path: '/nickname', message: 'is not allowed' }] }, { errors: [{ path: '', message: /^is not valid JSON/ }] }, { errors: [{ path: '', message: 'is not a JSON object' }] }])

  const { rows } = await app.pg.pool.query<{ email: string, name: string | null, active: boolean }>('SELECT email, name, active FROM users ORDER BY email')
  t.same(rows, [{ email: 'ann@example.com', name: 'Ann', active: true }, { email: 'cy@example.com', name: null, active: false }, { email: 'taken@example.com', name: null, active: true }])
  const audit = (await app.pg.pool.query<{ action: string, target_type: string, changes: Record<string, unknown> }>("SELECT action, target_type, changes FROM audit_events WHERE action IN ('user.create', 'user.import') ORDER BY created_at, action")).rows
  t.equal(audit.filter((a) => a.action === 'user.create').length, 3, 'one audit event per user (and the one created before)')
  const importEvent = audit.find((a) => a.action === 'user.import')
  t.match(importEvent, { target_type: 'import', changes: { format: 'ndjson', rows: 8, created: 2, duplicates: 2, invalid: 4 } })
  t.match(audit.filter((a) => a.action === 'user.create').slice(1).map((a) => a.changes), [{ importId: /^[0-9a-f-]{36}$/ }, { importId: /^[0-9a-f-]{36}$/ }])
  const events = (await app.pg.pool.query<{ event_type: string, payload: { data: { email: string } } }>('SELECT event_type, payload FROM webhook_deliveries ORDER BY seq')).rows
  t.same(events.map((e) => [e.event_type, e.payload.data.email]), [['user.created', 'ann@example.com'], ['user.created', 'cy@example.com']], 'a webhook event per user created')
})

t.test('CSV: a header row, quoted fields, coerced booleans; bad headers and broken CSV refused whole', async (t) => {
  const { app, headers } = await fixture(t)
  const csv = (payload: string, extra: Record<string, string> = {}): Promise<{ statusCode: number, json: <T>() => T }> =>
    app.inject({ method: 'POST', url: '/users/import', headers: { ...headers, 'content-type': 'text/csv; charset=utf-8', ...extra }, payload }) as never
  const res = await csv('\ufeffemail,name,active\r\ndee@example.com,"Dee, ""D""",true\r\neve@example.com,,false\r\nfay@example.com,Fay\r\ngus@example.com,,maybe\r\n\r\nhal@example.com,"multi\nline",\r\nivy@example.com,Ivy,\r\n')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { rows: 6, created: 3, duplicates: 0, invalid: 3 })
  t.match(res.json<{ errors: unknown[] }>().errors, [
    { line: 4, errors: [{ path: '', message: 'has 2 fields, the header 3' }] },
    { line: 5, errors: [{ path: '/active', message: 'must be boolean' }] },
    { line: 7, errors: [{ path: '/name', message: /must match pattern/ }] }
  ], 'a record over two lines is named by its first; names cannot hold line breaks')
  const { rows } = await app.pg.pool.query('SELECT email, name, active FROM users ORDER BY email')
  t.same(rows, [{ email: 'dee@example.com', name: 'Dee, "D"', active: true }, { email: 'eve@example.com', name: null, active: false }, { email: 'ivy@example.com', name: 'Ivy', active: true }])

  for (const [payload, detail] of [
    ['email,nickname\r\na@example.com,x\r\n', /Unknown CSV column "nickname"/],
    ['name,active\r\nx,true\r\n', /no email column/],
    ['email,email\r\na@example.com,b@example.com\r\n', /named twice/],
    ['email\r\nz1@example.com\r\n"z2@example.com\r\n', /cannot be read on at line \d/]
  ] as const) {
    const bad = await csv(payload)
    t.equal(bad.statusCode, 400)
    t.match(bad.json(), { code: 'ROSTER_BAD_REQUEST', detail })
  }
  t.equal((await app.pg.pool.query("SELECT 1 FROM users WHERE email LIKE 'z%'")).rowCount, 0, 'a failed import creates nobody (one transaction)')
  t.equal((await csv('email\r\nx@example.com\r\n', { 'content-type': 'text/csv; charset=latin1' })).statusCode, 415)
})

t.test('dryRun validates and reports, creates nothing; media types; limits', async (t) => {
  const { app, headers } = await fixture(t, { IMPORT_MAX_BYTES: '1048576' })
  const post = async (payload: string | Readable, contentType: string | null = NDJSON, query = ''): Promise<{ statusCode: number, json: <T>() => T }> =>
    await app.inject({ method: 'POST', url: `/users/import${query}`, headers: { ...headers, ...(contentType === null ? {} : { 'content-type': contentType }) }, payload }) as never
  const dry = await post('{"email":"a@example.com"}\n{"email":"a@example.com"}\n{"email":1}\n', NDJSON, '?dryRun=true')
  t.match(dry.json(), { dryRun: true, rows: 3, created: 1, duplicates: 1, invalid: 1 })
  t.equal((await app.pg.pool.query('SELECT 1 FROM users')).rowCount, 0, 'nothing created')
  t.equal((await app.pg.pool.query("SELECT 1 FROM audit_events WHERE action LIKE 'user.%'")).rowCount, 0, 'nothing audited')

  t.equal((await post('{"email":"a@example.com"}', 'application/json')).statusCode, 415, 'JSON is not an import')
  t.equal((await post('email\na@example.com', 'text/plain')).statusCode, 415)
  t.match((await post('', null)).json(), { status: 415, detail: /an empty body/ })
  t.match((await post('{"email":"n@example.com"}\n', 'application/jsonl')).json(), { created: 1 }, 'NDJSON under its other names')
  t.match((await post(Readable.from([]), NDJSON)).json(), { rows: 0, created: 0 }, 'an empty import')

  const big = await post(Readable.from((function * () { for (let i = 0; i < 20; i++) yield `${JSON.stringify({ email: `big${i}@example.com`, name: 'x'.repeat(60) })}\n`.repeat(1000) })()), NDJSON)
  t.equal(big.statusCode, 413, 'past IMPORT_MAX_BYTES while streaming')
  t.match(big.json(), { code: 'ROSTER_BODY_TOO_LARGE', detail: /IMPORT_MAX_BYTES/ })
  const declared = await app.inject({ method: 'POST', url: '/users/import', headers: { ...headers, 'content-type': NDJSON, 'content-length': '2000000' }, payload: '{}' })
  t.ok([400, 413].includes(declared.statusCode), `a declared length past the limit: ${declared.statusCode}`)
  t.equal((await app.pg.pool.query("SELECT 1 FROM users WHERE email LIKE 'big%'")).rowCount, 0, 'nothing of a refused import')
})

t.test('more than 100,000 rows: 413, nothing imported', async (t) => {
  const { app, headers } = await fixture(t)
  // Blank-ish rows are cheap to send and still count: invalid rows are rows.
  const lines = (function * () { for (let i = 0; i < 101; i++) yield '{}\n'.repeat(1000) })()
  const res = await app.inject({ method: 'POST', url: '/users/import', headers: { ...headers, 'content-type': NDJSON }, payload: Readable.from(lines) })
  t.equal(res.statusCode, 413)
  t.match(res.json(), { detail: /at most 100000 rows/ })
})

t.test('export: every user as NDJSON or CSV, oldest first; it imports as it is', async (t) => {
  const { app, headers } = await fixture(t)
  const names = ['Ann', null, 'Comma, "quoted"', 'Zoë Ünïcødé']
  const lines = Array.from({ length: 2503 }, (_, i) => JSON.stringify({ email: `user${i}@example.com`, name: names[i % 4], active: i % 3 !== 0 })).join('\n')
  t.match((await app.inject({ method: 'POST', url: '/users/import', headers: { ...headers, 'content-type': NDJSON }, payload: lines })).json(), { created: 2503 })

  const nd = await app.inject({ url: '/users/export', headers })
  t.equal(nd.statusCode, 200)
  t.equal(nd.headers['content-type'], 'application/x-ndjson; charset=utf-8')
  t.equal(nd.headers['content-disposition'], 'attachment; filename="users.ndjson"')
  const users = nd.body.trimEnd().split('\n').map((l) => JSON.parse(l) as { id: string, email: string, name: string | null, active: boolean, createdAt: string })
  t.equal(users.length, 2503, 'every user, across pages')
  t.equal(new Set(users.map((u) => u.id)).size, 2503)
  t.same(Object.keys(users[0] as object), ['id', 'email', 'name', 'active', 'createdAt', 'updatedAt', 'createdBy'])
  const page = (await app.inject({ url: '/users?limit=3', headers })).json<unknown[]>()
  t.same(users.slice(0, 3), page, 'the users as GET /users shows them, oldest first')
  const first = users[0] as { id: string }
  t.same({ ...first, groups: [] }, (await app.inject({ url: `/users/${first.id}`, headers })).json(), 'and as GET /users/{id} does (its instants by to_char, the export\'s made in Node)')

  const csv = await app.inject({ url: '/users/export', headers: { ...headers, accept: 'text/csv' } })
  t.equal(csv.headers['content-type'], 'text/csv; charset=utf-8')
  t.ok(csv.body.startsWith('id,email,name,active,createdAt,updatedAt,createdBy\r\n'))
  t.ok(csv.body.includes('"Comma, ""quoted"""') && csv.body.includes(',Zoë Ünïcødé,'), 'RFC 4180 quoting, UTF-8')
  t.equal((await app.inject({ url: '/users/export', headers: { ...headers, accept: 'text/html;q=0.9, text/*' } })).headers['content-type'], 'text/csv; charset=utf-8')
  t.equal((await app.inject({ url: '/users/export', headers: { ...headers, accept: 'application/*' } })).headers['content-type'], 'application/x-ndjson; charset=utf-8')
  const refused = await app.inject({ url: '/users/export', headers: { ...headers, accept: 'application/xml' } })
  t.equal(refused.statusCode, 406)
  t.equal(refused.json<{ code: string }>().code, 'ROSTER_NOT_ACCEPTABLE')

  // Both files import as they are into another instance: the same users.
  const { app: other, headers: otherHeaders } = await fixture(t)
  t.match((await other.inject({ method: 'POST', url: '/users/import', headers: { ...otherHeaders, 'content-type': 'text/csv' }, payload: csv.body })).json(), { created: 2503, invalid: 0 })
  t.match((await other.inject({ method: 'POST', url: '/users/import', headers: { ...otherHeaders, 'content-type': NDJSON }, payload: nd.body })).json(), { created: 0, duplicates: 2503, invalid: 0 })
  const again = (await other.inject({ url: '/users/export', headers: otherHeaders })).body.trimEnd().split('\n').map((l) => JSON.parse(l) as { email: string, name: string | null, active: boolean })
  t.same(again.map((u) => [u.email, u.name, u.active]).sort(), users.map((u) => [u.email, u.name, u.active]).sort())

  const empty = await other.inject({ url: '/users/export', headers: { ...otherHeaders, accept: 'text/csv' } })
  t.equal(empty.statusCode, 200)
})

t.test('export over a socket: a client that stops reading early frees the connection', async (t) => {
  const { app, headers } = await fixture(t)
  const lines = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ email: `s${i}@example.com`, name: 'n'.repeat(90) })).join('\n')
  await app.inject({ method: 'POST', url: '/users/import', headers: { ...headers, 'content-type': NDJSON }, payload: lines })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const before = app.pg.pool.totalCount
  await new Promise<void>((resolve, reject) => {
    const req = http.get(`${address}/users/export`, { headers }, (res) => {
      res.once('data', () => { req.destroy(); resolve() })
    })
    req.on('error', reject)
  })
  await waitUntil(() => app.pg.pool.idleCount === app.pg.pool.totalCount, { what: 'the export\'s connection back in the pool' })
  t.ok(app.pg.pool.totalCount >= before)
  const { rows } = await app.pg.pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND datname = current_database()")
  t.equal(rows[0]?.n, 0, 'no transaction left open')
})

t.test('an API client imports (no createdBy: the audit names the client); bodies cut short or too long in CSV', async (t) => {
  const { app, headers } = await fixture(t, { IMPORT_MAX_BYTES: '1048576' })
  const { createClient, clientToken } = await import('../access/helpers.ts')
  const owner = { headers } as Parameters<typeof createClient>[1]
  const client = await clientToken(app, await createClient(app, owner, ['users:write']))
  const res = await app.inject({ method: 'POST', url: '/users/import', headers: { ...client, 'content-type': NDJSON }, payload: '{"email":"machine@example.com"}\n' })
  t.match(res.json(), { created: 1 })
  const { rows } = await app.pg.pool.query("SELECT u.created_by, a.actor_type FROM users u JOIN audit_events a ON a.target_id = u.id WHERE u.email = 'machine@example.com'")
  t.same(rows, [{ created_by: null, actor_type: 'client' }])

  const empty = await app.inject({ method: 'POST', url: '/users/import', headers: { ...headers, 'content-type': NDJSON, 'content-length': '0' } })
  t.match(empty.json(), { rows: 0, created: 0 }, 'an empty body is an empty import')

  const csv = await app.inject({ method: 'POST', url: '/users/import', headers: { ...headers, 'content-type': 'text/csv' }, payload: Readable.from((function * () { yield 'email,name\r\n'; for (let i = 0; i < 30; i++) yield `c${i}@example.com,${'n'.repeat(60)}\r\n`.repeat(1000) })()) })
  t.equal(csv.statusCode, 413, 'CSV past IMPORT_MAX_BYTES')
  t.equal((await app.pg.pool.query("SELECT 1 FROM users WHERE email LIKE 'c%'")).rowCount, 0)

  // A client that goes away mid-upload, over a real socket: the import is abandoned, nothing of it stays.
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  for (const type of [NDJSON, 'text/csv']) {
    await new Promise<void>((resolve) => {
      const req = http.request(`${address}/users/import`, { method: 'POST', headers: { ...headers, 'content-type': type, 'transfer-encoding': 'chunked' } })
      req.on('error', () => { resolve() })
      req.write(type === NDJSON ? '{"email":"half@example.com"}\n' : 'email\r\nhalf@example.com\r\n', () => { setTimeout(() => { req.destroy(); resolve() }, 200) })
    })
  }
  await waitUntil(() => app.pg.pool.idleCount === app.pg.pool.totalCount, { what: 'the imports\' connections back in the pool' })
  t.equal((await app.pg.pool.query("SELECT 1 FROM users WHERE email = 'half@example.com'")).rowCount, 0, 'nothing of a body cut short')
})

t.test('a body that fails while the import is not reading it (before: its client gone while the transaction begins; after: while the answer is written): nothing stays, the process goes on', async (t) => {
  const app = await build(t, { env: { WEBHOOK_DISPATCHER: 'false' } })
  const admin = await createAdmin(app)
  for (const format of ['ndjson', 'csv'] as const) {
    const body = new PassThrough()
    body.write(format === 'ndjson' ? '{"email":"early@example.com"}\n' : 'email\r\nearly@example.com\r\n')
    const pending = app.users.transfer.import(body, { format, dryRun: false, maxBytes: 1_000_000, validate: Object.assign(() => true, { errors: null }) }, { type: 'admin', id: admin.id, requestId: 'early', ip: '127.0.0.1' })
    // The import has piped the body and waits for its transaction: the body fails meanwhile.
    body.destroy(new Error('the client went away'))
    await t.rejects(pending, /the client went away/, `${format}: the import fails with the body's error`)
  }
  t.equal((await app.pg.pool.query("SELECT 1 FROM users WHERE email = 'early@example.com'")).rowCount, 0, 'nothing imported')

  // And one that fails after the import has stopped reading it (here a row that fails the import; a 413 or a
  // failed batch alike), while its answer is on its way: the error ends with the import's reading.
  for (const format of ['ndjson', 'csv'] as const) {
    const body = new PassThrough()
    // (csv-parse answers a record when the next one begins)
    body.write(format === 'ndjson' ? '{"email":"late@example.com"}\n' : 'email\r\nlate@example.com\r\nnext@example.com\r\n')
    const stop = Object.assign(() => { throw new Error('the import stops here') }, { errors: null })
    await t.rejects(app.users.transfer.import(body, { format, dryRun: false, maxBytes: 1_000_000, validate: stop }, { type: 'admin', id: admin.id, requestId: 'late', ip: '127.0.0.1' }), /the import stops here/)
    body.destroy(new Error('the client went away'))
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.ok(body.destroyed, `${format}: the body's late error came and went`)
  }
  await waitUntil(() => app.pg.pool.idleCount === app.pg.pool.totalCount, { what: 'the imports\' connections back in the pool' })
})
