import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build, createTestDatabase } from '../helper.ts'
import { rootDir } from '../../src/paths.ts'

interface Run { code: number | null, stdout: string, stderr: string }

/** Runs `npm run create-admin -- …` from source, the way tap runs tests (same loader, so coverage follows it). */
async function createAdmin (args: string[], env: Record<string, string>, stdin = ''): Promise<Run> {
  const child = spawn(process.execPath, [...process.execArgv, join(rootDir, 'src', 'cli', 'create-admin.ts'), ...args], {
    env: { ...process.env, ARGON2_MEMORY: '1024', ARGON2_TIME: '1', ...env },
    cwd: rootDir,
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => { stdout += String(d) })
  child.stderr.on('data', (d) => { stderr += String(d) })
  child.stdin.end(stdin)
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout, stderr }
}

const PASSWORD = 'the operator picked this one'

t.test('npm run create-admin creates a confirmed admin with the password from stdin', async (t) => {
  const databaseUrl = await createTestDatabase(t)
  const env = { DATABASE_URL: databaseUrl }
  const run = await createAdmin(['--email', 'root@example.com', '--name', 'root'], env, `${PASSWORD}\nignored second line\n`)
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /^roster: admin root <root@example.com> created and confirmed \(id [0-9a-f-]{36}\)\n$/)
  t.notOk(run.stdout.includes(PASSWORD) || run.stderr.includes(PASSWORD), 'the password is not echoed')

  const app = await build(t, { databaseUrl, env: { REGISTRATION: 'closed' } })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'root@example.com', password: PASSWORD } })
  t.equal(login.statusCode, 200, 'it can log in at once, registration closed or not')
  const { rows } = await app.pg.pool.query('SELECT action, actor_id, request_id, changes FROM audit_events')
  t.same(rows, [{ action: 'admin.register', actor_id: null, request_id: 'create-admin', changes: { email: 'root@example.com', name: 'root', confirmed: true } }])

  const again = await createAdmin(['--email', 'ROOT@example.com', '--name', 'root2'], { ...env, MIGRATE_ON_START: 'false' }, PASSWORD)
  t.equal(again.code, 1)
  t.match(again.stderr, /could not create the admin: email: an admin with this email address already exists/)
})

t.test('create-admin refuses bad input with one clear line and exit code 1', async (t) => {
  const env = { DATABASE_URL: 'postgres://nobody:x@127.0.0.1:1/none', DB_CONNECTION_TIMEOUT: '500' }
  const cases: Array<[string[], string, Record<string, string>, RegExp]> = [
    [['--email', 'a@example.com'], PASSWORD, env, /^roster: usage: npm run create-admin -- --email <address> --name <name>/],
    [['--email', 'a@example.com', '--name', 'ann', '--admin'], PASSWORD, env, /Unknown option '--admin'[\s\S]*usage:/],
    [['--email', 'not-an-address', '--name', 'a b'], PASSWORD, env, /email must be a valid email address; name must be 3 to 32 letters/],
    [['--email', 'a@example.com', '--name', 'ann'], 'password1234', env, /password is too common/],
    [['--email', 'a@example.com', '--name', 'ann'], PASSWORD, { ...env, PORT: 'x' }, /invalid configuration: PORT: must be integer/]
  ]
  // Two at a time: each is a process of its own.
  for (let i = 0; i < cases.length; i += 2) {
    await Promise.all(cases.slice(i, i + 2).map(async ([args, stdin, e, message]) => {
      const run = await createAdmin(args, e, stdin)
      t.equal(run.code, 1, args.join(' '))
      t.match(run.stderr, message, args.join(' '))
      t.notMatch(run.stderr, /\n {4}at /, 'no stack trace')
    }))
  }
})

t.test('create-admin uses the embedded PostgreSQL when no database is configured', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'roster-create-admin-'))
  chmodSync(dataDir, 0o755)
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const run = await createAdmin(['--email', 'first@example.com', '--name', 'first'], { DATABASE_URL: '', DATA_DIR: dataDir }, PASSWORD)
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /admin first <first@example.com> created/)
})
