import t from 'tap'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build, createTestDatabase, TEST_ENV } from '../helper.ts'
import { spawnEntry } from '../process.ts'
import { createAdminCommand } from '../../src/cli/create-admin.ts'

const PASSWORD = 'the operator picked this one'

/** The command in this process: its exit code and what it printed. */
async function run (args: string[], env: Record<string, string>, password: string | Error = PASSWORD) {
  let stdout = ''
  let stderr = ''
  const code = await createAdminCommand(args, {
    readPassword: async () => { if (password instanceof Error) throw password; return password },
    stdout: (line) => { stdout += line },
    stderr: (line) => { stderr += line },
    env: { ...TEST_ENV, ...env },
    dotEnvPath: '/dev/null'
  })
  return { code, stdout, stderr }
}

t.test('npm run create-admin: the program reads the password from stdin and creates a confirmed admin', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  // As `npm run create-admin` runs it, with the loader tap runs tests with (so coverage follows it).
  const child = spawnEntry('src/cli/create-admin.ts', { ...TEST_ENV, DATABASE_URL: databaseUrl }, { stdin: 'pipe', args: ['--email', 'root@example.com', '--name', 'root'] })
  child.child.stdin?.end(`${PASSWORD}\nignored second line\n`)
  const { code } = await child.exit
  const stdout = child.stdout()
  const stderr = child.stderr()
  t.equal(code, 0, stderr)
  t.match(stdout, /^roster: admin root <root@example.com> created and confirmed, role owner \(id [0-9a-f-]{36}\)\n$/)
  t.notOk(stdout.includes(PASSWORD) || stderr.includes(PASSWORD), 'the password is not echoed')

  const app = await build(t, { databaseUrl, env: { REGISTRATION: 'closed' } })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'root@example.com', password: PASSWORD } })
  t.equal(login.statusCode, 200, 'it logs in at once, registration closed or not')
  const { rows } = await app.pg.pool.query('SELECT action, actor_type, actor_id, request_id, changes FROM audit_events')
  t.same(rows, [{ action: 'admin.register', actor_type: null, actor_id: null, request_id: 'create-admin', changes: { email: 'root@example.com', name: 'root', confirmed: true, role: 'owner' } }])

  const again = await run(['--email', 'ROOT@example.com', '--name', 'root2'], { DATABASE_URL: databaseUrl, MIGRATE_ON_START: 'false' })
  t.equal(again.code, 1)
  t.equal(again.stderr, 'roster: could not create the admin: email: an admin with this email address already exists\n')
  const name = await run(['--email', 'other@example.com', '--name', 'ROOT'], { DATABASE_URL: databaseUrl })
  t.match(name.stderr, /name: an admin with this name already exists/)
})

t.test('create-admin refuses bad input with one clear line and exit code 1', async (t) => {
  const env = { DATABASE_URL: 'postgres://nobody:x@127.0.0.1:1/none', DB_CONNECTION_TIMEOUT: '500' }
  const cases: Array<[string[], string | Error, Record<string, string>, RegExp]> = [
    [[], PASSWORD, env, /^roster: usage: npm run create-admin -- --email <address> --name <name>/],
    [['--email', 'a@example.com'], PASSWORD, env, /^roster: usage:/],
    [['--email', 'a@example.com', '--name', 'ann', '--admin'], PASSWORD, env, /Unknown option '--admin'[\s\S]*usage:/],
    [['--email', 'not-an-address', '--name', 'a b'], PASSWORD, env, /^roster: email must be a valid email address; name must be 3 to 32 letters/],
    [['--email', 'a@example.com', '--name', 'a b'], PASSWORD, env, /^roster: name must be 3 to 32 letters/],
    [['--email', 'a@example.com', '--name', 'ann', '--role', 'root'], PASSWORD, env, /^roster: role must be one of owner, admin, viewer\n[\s\S]*usage:/],
    [['--email', 'a@example.com', '--name', 'ann'], 'password1234', env, /password is too common/],
    [['--email', 'a@example.com', '--name', 'ann'], '', env, /password must be at least 12 characters/],
    [['--email', 'a@example.com', '--name', 'ann'], new Error('the passwords differ'), env, /^roster: the passwords differ\n$/],
    [['--email', 'a@example.com', '--name', 'ann'], PASSWORD, { ...env, PORT: 'x' }, /invalid configuration: PORT: must be integer/],
    [['--email', 'a@example.com', '--name', 'ann'], PASSWORD, env, /could not create the admin: .*ECONNREFUSED/]
  ]
  for (const [args, password, e, message] of cases) {
    const res = await run(args, e, password)
    t.equal(res.code, 1, args.join(' '))
    t.match(res.stderr, message, args.join(' '))
    t.equal(res.stdout, '')
  }
})

t.test('create-admin uses the embedded PostgreSQL when no database is configured', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'roster-create-admin-'))
  chmodSync(dataDir, 0o755)
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const res = await run(['--email', 'first@example.com', '--name', 'first'], { DATA_DIR: dataDir })
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, /admin first <first@example.com> created/)
})

t.test('beside a running server on the same DATA_DIR: create-admin joins its embedded PostgreSQL; a second server is refused', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'roster-beside-'))
  chmodSync(dataDir, 0o755)
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const server = await build(t, { databaseUrl: '', env: { DATA_DIR: dataDir } })
  const listening = server.logs.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('embedded PostgreSQL listening')) as { url: string }
  t.match(listening.url, /^postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/roster$/, 'its URL is logged, the password masked')

  const res = await run(['--email', 'beside@example.com', '--name', 'beside'], { DATA_DIR: dataDir })
  t.equal(res.code, 0, res.stderr)
  const login = await server.inject({ method: 'POST', url: '/auth/login', payload: { email: 'beside@example.com', password: PASSWORD } })
  t.equal(login.statusCode, 200, 'the running server sees the admin')
  t.ok(server.embeddedPostgres?.pid() !== undefined, 'and its PostgreSQL still runs: the command did not stop it')
  t.equal((await server.inject({ url: '/health/ready' })).statusCode, 200)

  await t.rejects(build(t, { databaseUrl: '', env: { DATA_DIR: dataDir } }), {
    name: 'EmbeddedInUseError',
    message: /the embedded PostgreSQL in .* is already running \(pid \d+, postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/roster\), started by another Roster server/
  })
})
