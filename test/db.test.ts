import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getTableConfig } from 'drizzle-orm/pg-core'
import * as schema from '../db/schema/index.ts'
import { build, createTestDatabase, waitUntil } from './helper.ts'
import { shippedMigrations, appliedMigrations } from '../db/migrate.ts'
import { freePort, runningEmbeddedPostgres } from '../db/embedded.ts'

t.test('migrations run at start, exactly once, even when instances race', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const [a, b] = await Promise.all([build(t, { databaseUrl }), build(t, { databaseUrl })])
  t.equal(await appliedMigrations(a.pg.pool), shippedMigrations())
  const { rows } = await b.pg.pool.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
  t.same(rows.map((r) => r.tablename), ['account_tokens', 'admins', 'api_client_secrets', 'api_clients', 'audit_events', 'email_outbox', 'group_members', 'groups', 'idempotency_keys', 'invitations', 'login_throttle', 'mfa_recovery_codes', 'mfa_token_uses', 'rate_limit_hits', 'refresh_tokens', 'sessions', 'signing_keys', 'users', 'webhook_attempts', 'webhook_deliveries', 'webhook_endpoints'])
  const { rows: [counters] } = await a.pg.pool.query("SELECT relpersistence FROM pg_class WHERE relname = 'rate_limit_hits'")
  t.equal(counters.relpersistence, 'u', 'the rate-limit counters are an UNLOGGED table (no WAL per /auth request)')
  const { rows: trigram } = await a.pg.pool.query("SELECT relname, reloptions FROM pg_class WHERE relname LIKE 'users_%_trgm_idx' ORDER BY 1")
  t.same(trigram.map((r) => [r.relname, r.reloptions]), ['email', 'family_name', 'given_name', 'name', 'user_name'].map((c) => [`users_${c}_trgm_idx`, ['fastupdate=true', 'gin_pending_list_limit=1024']]),
    'the users\' trigram indexes as the schema declares them (migration 0011 is hand-written): fast update, a 1 MB pending list')
  const { rows: [twice] } = await a.pg.pool.query('SELECT count(*)::int AS n, count(DISTINCT hash)::int AS hashes FROM drizzle.__drizzle_migrations')
  t.same(twice, { n: shippedMigrations(), hashes: shippedMigrations() }, 'each migration recorded once')
})

t.test('emails and names are unique case-insensitively', async (t) => {
  const app = await build(t)
  const q = (sql: string, params: unknown[]) => app.pg.pool.query(sql, params)
  await q('INSERT INTO admins (email, name, password_hash) VALUES ($1, $2, $3)', ['Ann@Example.com', 'Ann', 'x'])
  await t.rejects(q('INSERT INTO admins (email, name, password_hash) VALUES ($1, $2, $3)', ['ann@example.COM', 'other', 'x']), { code: '23505', constraint: 'admins_email_lower_key' })
  await t.rejects(q('INSERT INTO admins (email, name, password_hash) VALUES ($1, $2, $3)', ['b@example.com', 'ANN', 'x']), { code: '23505', constraint: 'admins_name_lower_key' })
  await q('INSERT INTO users (email) VALUES ($1)', ['U@example.com'])
  await t.rejects(q('INSERT INTO users (email) VALUES ($1)', ['u@EXAMPLE.com']), { code: '23505', constraint: 'users_email_lower_key' })
})

t.test('appended rows get time-ordered ids (UUID version 7, migration 0013), as PostgreSQL 18 reads them', async (t) => {
  const app = await build(t)
  const q = async (sql: string): Promise<Array<Record<string, unknown>>> => (await app.pg.pool.query(sql)).rows
  const defaults = await q("SELECT table_name AS t FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'id' AND column_default = 'roster_uuid_v7()' ORDER BY 1")
  t.same(defaults.map((r) => r.t), ['audit_events', 'email_outbox', 'groups', 'users', 'webhook_attempts', 'webhook_deliveries'])
  for (let i = 0; i < 3; i++) await q(`INSERT INTO users (email) SELECT 'v7-${i}-' || n || '@example.com' FROM generate_series(1, 50) n; SELECT pg_sleep(0.002)`)
  // uuid_extract_version and uuid_extract_timestamp are PostgreSQL's own (17+), not ours.
  const rows = await q("SELECT id, uuid_extract_version(id) AS v, uuid_extract_timestamp(id) AS at, created_at, clock_timestamp() AS now FROM users WHERE email LIKE 'v7-%' ORDER BY id")
  t.equal(rows.length, 150)
  t.ok(rows.every((r) => r.v === 7), 'version 7')
  t.ok(rows.every((r) => Math.abs((r.at as Date).getTime() - (r.created_at as Date).getTime()) < 1000 && (r.at as Date) <= (r.now as Date)), 'the time in the id is when the row was made')
  const byId = await q("SELECT substring(email FROM 4 FOR 1)::int AS b FROM users WHERE email LIKE 'v7-%' ORDER BY id")
  t.same(byId.map((r) => r.b), [...Array(50).fill(0), ...Array(50).fill(1), ...Array(50).fill(2)], 'ids ascend with time: each statement\'s rows sort after the earlier ones\'')
  const distinct = await q("SELECT count(DISTINCT substring(id::text FROM 15))::int AS n FROM users WHERE email LIKE 'v7-%'")
  t.equal(distinct[0]?.n, 150, 'the bits after the time are random (no two alike)')
})

t.test('the drizzle schema declares the keys the migrations create', async (t) => {
  const indexes = (table: Parameters<typeof getTableConfig>[0]) => getTableConfig(table).indexes.map((i) => i.config.name)
  t.ok(indexes(schema.admins).includes('admins_email_lower_key'))
  t.ok(indexes(schema.users).includes('users_email_lower_key'))
  t.ok(indexes(schema.sessions).includes('sessions_admin_id_idx'))
  t.ok(indexes(schema.refreshTokens).includes('refresh_tokens_session_id_idx'))
  t.ok(indexes(schema.accountTokens).includes('account_tokens_admin_id_idx'))
  t.same(indexes(schema.auditEvents), ['audit_events_created_at_id_idx', 'audit_events_actor_idx', 'audit_events_target_idx', 'audit_events_action_idx'])
  t.same(indexes(schema.emailOutbox), ['email_outbox_due_idx', 'email_outbox_done_idx'])
  t.same(indexes(schema.loginThrottle), ['login_throttle_expires_at_idx'])
  t.same(indexes(schema.rateLimitHits), ['rate_limit_hits_reset_at_idx'])
  t.same(indexes(schema.idempotencyKeys), ['idempotency_keys_expires_at_idx'])
  t.same(indexes(schema.mfaRecoveryCodes), ['mfa_recovery_codes_admin_id_idx'])
  t.same(indexes(schema.mfaTokenUses), ['mfa_token_uses_expires_at_idx'])
  t.same(indexes(schema.invitations), ['invitations_token_hash_key', 'invitations_created_at_idx'])
  t.same(indexes(schema.apiClients), ['api_clients_created_at_idx'])
  t.same(indexes(schema.apiClientSecrets), ['api_client_secrets_secret_hash_key', 'api_client_secrets_client_id_idx'])
  t.same(indexes(schema.groups), ['groups_display_name_lower_key', 'groups_external_id_key', 'groups_created_at_id_idx', 'groups_display_name_id_idx', 'groups_updated_at_id_idx', 'groups_display_name_trgm_idx'])
  t.same(indexes(schema.groupMembers), ['group_members_user_id_idx'])
  for (const name of ['users_user_name_lower_key', 'users_external_id_key', 'users_user_name_trgm_idx', 'users_given_name_trgm_idx', 'users_family_name_trgm_idx']) t.ok(indexes(schema.users).includes(name), name)
  t.same(indexes(schema.webhookEndpoints), ['webhook_endpoints_created_at_id_idx'])
  t.same(indexes(schema.webhookDeliveries), ['webhook_deliveries_due_idx', 'webhook_deliveries_order_idx', 'webhook_deliveries_endpoint_created_at_id_idx', 'webhook_deliveries_finished_at_idx'])
  t.same(indexes(schema.webhookAttempts), ['webhook_attempts_delivery_id_idx'])
  t.same(getTableConfig(schema.admins).checks.map((c) => c.name), ['admins_role_check'])
  const fks = [schema.users, schema.sessions, schema.refreshTokens, schema.accountTokens, schema.mfaRecoveryCodes, schema.invitations, schema.apiClients, schema.apiClientSecrets, schema.webhookEndpoints, schema.webhookDeliveries, schema.webhookAttempts, schema.groups, schema.groupMembers]
    .flatMap((table) => getTableConfig(table).foreignKeys.map((fk) => getTableConfig(fk.reference().foreignTable).name))
  t.same(fks, ['admins', 'admins', 'sessions', 'admins', 'admins', 'admins', 'admins', 'api_clients', 'admins', 'webhook_endpoints', 'webhook_deliveries', 'admins', 'groups', 'users'])
  const { rows } = await (await build(t)).pg.pool.query("SELECT conname FROM pg_constraint WHERE conname = 'admins_role_check'")
  t.equal(rows.length, 1, 'the migration made the role check')
})

t.test('an idle connection dying does not crash the process', async (t) => {
  const app = await build(t)
  const [client, other] = await Promise.all([app.pg.pool.connect(), app.pg.pool.connect()])
  const { rows: [{ pid }] } = await client.query('SELECT pg_backend_pid() AS pid')
  client.release()
  await other.query('SELECT pg_terminate_backend($1)', [pid])
  other.release()
  // Idle in the pool it is reported by the pool; should a background job (the mail dispatcher, the keys'
  // heartbeat) have checked it out meanwhile, by the client's listener or as that job's failed query.
  const lost = (): boolean => app.logs.lines.some((l) => Number(l.level) >= 40 && (l.msg === 'idle database connection lost' || l.msg === 'database connection error' ||
    /terminating connection due to administrator command/.test(String((l.err as { message?: string } | undefined)?.message))))
  await waitUntil(lost, { timeout: 10_000 }).catch(() => {}) // asserted below
  t.ok(lost(), 'logged, not thrown')
  const res = await app.inject({ url: '/health/ready' })
  t.equal(res.statusCode, 200, 'the pool reconnects')
})

t.test('with no database configured, an embedded PostgreSQL is started, kept across restarts, and stopped on close', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'roster-data-'))
  chmodSync(dataDir, 0o755) // the server may run as the `postgres` user, which must reach its data
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env = { DATA_DIR: dataDir, DATABASE_URL: '' }
  // build() would create a test database; here the app must find none configured.
  const first = await build(t, { databaseUrl: '', env })
  t.ok(first.embeddedPostgres, 'embedded server started')
  await first.pg.pool.query("INSERT INTO users (email) VALUES ('kept@example.com')")
  const pid = first.embeddedPostgres?.pid()
  t.type(pid, 'number')
  await first.close()
  t.throws(() => process.kill(pid as number, 0), { code: 'ESRCH' }, 'postgres stopped on close')

  const second = await build(t, { databaseUrl: '', env: { ...env, EMBEDDED_PG_PORT: String(await freePort()) } })
  const { rows } = await second.pg.pool.query('SELECT email FROM users')
  t.same(rows, [{ email: 'kept@example.com' }], 'data kept across restarts')
  t.equal(second.databaseUrl, '')
})

t.test('an embedded server is running only while the process its postmaster.pid names is alive', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'roster-pid-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  t.equal(runningEmbeddedPostgres(dir), null, 'no postmaster.pid: none')
  const pidFile = (pid: number): void => { writeFileSync(join(dir, 'postmaster.pid'), `${pid}\n${dir}\n1700000000\n54321\n\nlocalhost\n`) }
  pidFile(process.pid)
  t.match(runningEmbeddedPostgres(dir), { pid: process.pid, port: 54321, url: /^postgres:\/\/.*@127\.0\.0\.1:54321\/roster$/ }, 'a live process: running')
  // A process that has exited: what a crash (or kill -9) leaves behind.
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
  pidFile(Number(gone.stdout))
  t.equal(runningEmbeddedPostgres(dir), null, 'a stale postmaster.pid: none')
  pidFile(0)
  t.equal(runningEmbeddedPostgres(dir), null, 'a pid file without a pid: none')
})
