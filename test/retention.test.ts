/**
 * The pruning job (src/retention/): what it deletes from each table and what
 * it keeps, in batches, one instance at a time, never waiting on a locked
 * row, counted in /metrics.
 */
import t from 'tap'
import { build, createAdmin, createTestDatabase, loginAs, waitUntil, type TestApp } from './helper.ts'
import { PRUNE_LOCK, PRUNED, pruneStatements } from '../src/retention/repository.ts'
import { BATCH_SIZE } from '../src/retention/service.ts'

const count = async (app: TestApp, table: string): Promise<number> => (await app.pg.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n

/** One row of each table that must go, and one that must stay. */
async function seed (app: TestApp): Promise<void> {
  const q = (sql: string, values: unknown[] = []) => app.pg.pool.query(sql, values)
  const admin = await createAdmin(app)
  const live = await loginAs(app, admin)
  const ended = await loginAs(app, admin)
  const recent = await loginAs(app, admin)
  const idle = await loginAs(app, admin)
  await q("UPDATE sessions SET revoked_at = now() - interval '8 days' WHERE id = $1", [ended.sessionId])
  await q("UPDATE sessions SET revoked_at = now() - interval '6 days' WHERE id = $1", [recent.sessionId])
  await q("UPDATE sessions SET idle_expires_at = now() - interval '9 days' WHERE id = $1", [idle.sessionId])
  await q(`INSERT INTO account_tokens (token_hash, admin_id, purpose, expires_at, used_at) VALUES
    ('used', $1, 'confirm_account', now() + interval '1 hour', now()), ('expired', $1, 'reset_password', now() - interval '1 second', NULL),
    ('pending', $1, 'reset_password', now() + interval '1 hour', NULL)`, [live.adminId])
  await q(`INSERT INTO login_throttle (email, client, failures, window_started_at, last_attempt_by, locked_until, expires_at) VALUES
    ('old@x', '1.2.3.4', 3, now() - interval '16 minutes', 'i', NULL, now() - interval '1 minute'),
    ('current@x', '*', 3, now() - interval '1 minute', 'i', NULL, now() + interval '14 minutes'),
    ('locked@x', '1.2.3.4', 10, now() - interval '20 minutes', 'i', now() + interval '1 minute', now() + interval '1 minute'),
    ('unlocked@x', '*', 10, now() - interval '40 minutes', 'i', now() - interval '1 minute', now() - interval '1 minute')`)
  await q(`INSERT INTO invitations (email, role, token_hash, invited_by, expires_at, accepted_at, revoked_at) VALUES
    ('accepted@x', 'viewer', 'i1', $1, now() + interval '1 day', now(), NULL), ('revoked@x', 'viewer', 'i2', $1, now() + interval '1 day', NULL, now()),
    ('expired@x', 'viewer', 'i3', $1, now() - interval '1 second', NULL, NULL), ('pending@x', 'viewer', 'i4', $1, now() + interval '1 day', NULL, NULL)`, [admin.id])
  await q("INSERT INTO mfa_token_uses (jti, expires_at) VALUES (gen_random_uuid(), now() - interval '1 second'), (gen_random_uuid(), now() + interval '5 minutes')")
  await q("INSERT INTO rate_limit_hits (key, hits, reset_at) VALUES ('POST /auth/login 1.2.3.4', 3, now() - interval '1 second'), ('POST /auth/login 1.2.3.5', 3, now() + interval '1 minute')")
  await q(`INSERT INTO email_outbox (template, recipient, payload, status, created_at) VALUES
    ('confirm_account', 'a@x', '{}', 'sent', now() - interval '8 days'), ('confirm_account', 'b@x', '{}', 'failed', now() - interval '8 days'),
    ('confirm_account', 'c@x', '{}', 'sent', now() - interval '6 days'), ('confirm_account', 'd@x', '{}', 'pending', now() - interval '30 days')`)
  const { rows: [endpoint] } = await q('INSERT INTO webhook_endpoints (url, events, secret) VALUES (\'https://hooks.example.com/\', \'{user.created}\', \'sealed\') RETURNING id')
  await q(`INSERT INTO webhook_deliveries (endpoint_id, message_id, event_type, resource_id, payload, status, finished_at) VALUES
    ($1, gen_random_uuid(), 'user.created', 'r1', '{}', 'delivered', now() - interval '8 days'), ($1, gen_random_uuid(), 'user.created', 'r2', '{}', 'failed', now() - interval '8 days'),
    ($1, gen_random_uuid(), 'user.created', 'r3', '{}', 'delivered', now() - interval '6 days'), ($1, gen_random_uuid(), 'user.created', 'r4', '{}', 'pending', NULL)`, [(endpoint as { id: string }).id])
  await q('INSERT INTO webhook_attempts (delivery_id, duration_ms, status_code) SELECT id, 5, 204 FROM webhook_deliveries')
  await q(`INSERT INTO idempotency_keys (admin_id, key, fingerprint, expires_at) VALUES
    ($1, 'old', 'f', now() - interval '1 hour'), ($1, 'live', 'f', now() + interval '1 hour')`, [admin.id])
  await q(`INSERT INTO audit_events (action, target_type, target_id, created_at) VALUES
    ('user.create', 'user', gen_random_uuid(), now() - interval '400 days'), ('user.create', 'user', gen_random_uuid(), now())`)
}

t.test('a run deletes what no table needs any more, and keeps the rest', async (t) => {
  const app = await build(t, { env: { MAIL_DISPATCHER: 'false' } })
  await seed(app)
  const before = await count(app, 'refresh_tokens')
  const pruned = await app.retention.run()
  t.same(pruned, {
    refresh_tokens: 2, // those of the two sessions that ended more than 7 days ago
    sessions: 2,
    account_tokens: 2,
    invitations: 3,
    login_throttle: 2,
    mfa_token_uses: 1,
    rate_limit_hits: 1,
    email_outbox: 2,
    webhook_deliveries: 2,
    idempotency_keys: 1
  }, 'audit events are kept forever by default: not even in the list')
  t.equal(await count(app, 'refresh_tokens'), before - 2)
  t.same((await app.pg.pool.query('SELECT revoked_at IS NULL AS live FROM sessions ORDER BY live')).rows, [{ live: false }, { live: true }], 'the live session, and the one ended 6 days ago')
  t.same((await app.pg.pool.query('SELECT token_hash FROM account_tokens')).rows, [{ token_hash: 'pending' }])
  t.same((await app.pg.pool.query("SELECT email FROM login_throttle WHERE email LIKE '%@x' ORDER BY email")).rows, [{ email: 'current@x' }, { email: 'locked@x' }], 'rows past expires_at go')
  t.same((await app.pg.pool.query('SELECT email FROM invitations')).rows, [{ email: 'pending@x' }], 'a pending invitation stays')
  t.equal(await count(app, 'mfa_token_uses'), 1, 'a jti whose mfa_token could still be presented stays')
  t.same((await app.pg.pool.query('SELECT recipient FROM email_outbox ORDER BY recipient')).rows, [{ recipient: 'c@x' }, { recipient: 'd@x' }])
  t.same((await app.pg.pool.query('SELECT resource_id FROM webhook_deliveries ORDER BY resource_id')).rows, [{ resource_id: 'r3' }, { resource_id: 'r4' }], 'a recent and a pending delivery stay')
  t.equal(await count(app, 'webhook_attempts'), 2, 'attempts go with their delivery')
  t.equal(await count(app, 'audit_events'), 2, 'the audit log is kept')
  t.same(await app.retention.run(), { refresh_tokens: 0, sessions: 0, account_tokens: 0, invitations: 0, login_throttle: 0, mfa_token_uses: 0, rate_limit_hits: 0, email_outbox: 0, webhook_deliveries: 0, idempotency_keys: 0 }, 'nothing left to do')

  const metrics = (await app.inject({ url: '/metrics' })).body
  t.match(metrics, /^roster_pruned_rows_total\{table="sessions"\} 2$/m)
  t.match(metrics, /^roster_pruned_rows_total\{table="email_outbox"\} 2$/m)
})

t.test('retention settings: AUDIT_RETENTION_DAYS prunes the audit log; 0 days prunes ended sessions and sent emails at once', async (t) => {
  const app = await build(t, { env: { AUDIT_RETENTION_DAYS: '365', SESSION_RETENTION_DAYS: '0', OUTBOX_RETENTION_DAYS: '0', MAIL_DISPATCHER: 'false' } })
  await seed(app)
  const pruned = await app.retention.run()
  t.match(pruned, { sessions: 3, email_outbox: 3, audit_events: 1 })
  t.same((await app.pg.pool.query("SELECT count(*)::int AS n FROM audit_events WHERE created_at < now() - interval '365 days'")).rows, [{ n: 0 }])
})

t.test('large backlogs go in batches; locked rows are skipped, not waited for; one instance prunes at a time', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const app = await build(t, { databaseUrl })
  const other = await build(t, { databaseUrl, env: { LOG_LEVEL: 'debug' } })
  await app.pg.pool.query(`INSERT INTO rate_limit_hits (key, hits, reset_at) SELECT 'k' || i, 1, now() - interval '1 second' FROM generate_series(1, ${2 * BATCH_SIZE + 5}) AS i`)

  // Another transaction holds one row: the batch goes on without it.
  const holder = await app.pg.pool.connect()
  await holder.query('BEGIN')
  await holder.query("SELECT 1 FROM rate_limit_hits WHERE key = 'k1' FOR UPDATE")
  t.match(await app.retention.run(), { rate_limit_hits: 2 * BATCH_SIZE + 4 }, 'three batches, the locked row left')
  await holder.query('ROLLBACK')

  // Another instance pruning (it holds the lock): this run stops at once.
  await holder.query('BEGIN')
  await holder.query('SELECT pg_advisory_xact_lock($1)', [PRUNE_LOCK])
  t.equal(await other.retention.run(), null)
  await other.retention.runLogged()
  t.ok(other.logs.lines.some((l) => l.msg === 'another instance is pruning'), 'said at debug level')
  await holder.query('ROLLBACK')
  holder.release()
  t.match(await other.retention.run(), { rate_limit_hits: 1 }, 'then it prunes')
  t.equal(await count(app, 'rate_limit_hits'), 0)
})

t.test('the timer\'s runs are logged; a failed run is a warning; close waits for the batch under way', async (t) => {
  const app = await build(t, { env: { PRUNE_INTERVAL: '1000' } })
  await app.pg.pool.query("INSERT INTO rate_limit_hits (key, hits, reset_at) VALUES ('x', 1, now() - interval '1 second')")
  await waitUntil(() => app.logs.lines.some((l) => l.msg === 'old rows pruned'), { what: 'a run of the timer', timeout: 15_000 })
  t.match(app.logs.lines.find((l) => l.msg === 'old rows pruned'), { component: 'retention', pruned: { rate_limit_hits: 1 } })

  const unmigrated = await build(t, { env: { MIGRATE_ON_START: 'false' } })
  await unmigrated.retention.runLogged()
  t.ok(unmigrated.logs.lines.some((l) => l.msg === 'pruning failed (tried again at the next run)' && l.level === 40))
  // A run asked for while one fails: it waits for that one, then runs (and fails) on its own.
  const failing = unmigrated.retention.run()
  const next = unmigrated.retention.run()
  await t.rejects(failing, /relation .* does not exist/)
  await t.rejects(next, /relation .* does not exist/)

  // A run under way: the timer's run is skipped, close waits for it.
  const holder = await app.pg.pool.connect()
  await holder.query('BEGIN')
  await holder.query('LOCK TABLE refresh_tokens IN ACCESS EXCLUSIVE MODE')
  const running = app.retention.run()
  const queued = app.retention.run()
  await app.retention.runLogged()
  const closing = app.close()
  await new Promise((resolve) => setTimeout(resolve, 100))
  await holder.query('ROLLBACK')
  holder.release()
  await closing
  t.type(await running, 'object', 'the run finished before the pool closed')
  t.same(await queued, {}, 'a run asked for meanwhile waited for it, then stopped at once (closing)')
})

t.test('the list of pruned tables', async (t) => {
  t.same(PRUNED.map((p) => p.table), ['refresh_tokens', 'sessions', 'account_tokens', 'invitations', 'login_throttle', 'mfa_token_uses', 'rate_limit_hits', 'email_outbox', 'webhook_deliveries', 'idempotency_keys', 'audit_events'])
  const statements = pruneStatements({ sessionDays: 7, outboxDays: 7, auditDays: undefined })
  t.notOk(statements.some((s) => s.table === 'audit_events'), 'no audit statement without AUDIT_RETENTION_DAYS')
  for (const s of statements) t.match(s.text, /^DELETE FROM \w+ WHERE ctid = ANY \(ARRAY\(SELECT t\.ctid FROM .* LIMIT \$1 FOR UPDATE OF t SKIP LOCKED\)\)$/, s.table)
})
