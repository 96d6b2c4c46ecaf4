/**
 * `npm run create-admin -- --email ann@example.com --name ann`: creates a
 * confirmed admin, also when REGISTRATION=closed (bootstrapping). The
 * password comes from standard input (first line) or, on a terminal, from a
 * prompt that does not echo. The database is the configured one (embedded
 * when none is set); pending migrations are applied first unless
 * MIGRATE_ON_START=false.
 */
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { loadConfig, ConfigError, type Config } from '../config.ts'
import { openDatabase } from '../../db/open.ts'
import { runMigrations } from '../../db/migrate.ts'
import { recordAudit } from '../audit/repository.ts'
import { transaction } from '../infra/database.ts'
import { argon2Params, hashPassword } from '../infra/passwords.ts'
import { emailProblem, loadPasswordPolicy, nameProblem } from '../admins/policy.ts'
import { createAdminsRepository } from '../admins/repository.ts'
import { adminEvent } from '../admins/service.ts'
import { recordEvents } from '../webhooks/repository.ts'
import { ROLES, type Role } from '../../schemas/admins.ts'

const USAGE = 'usage: npm run create-admin -- --email <address> --name <name> [--role owner|admin|viewer]  (password on standard input, or prompted; the role is owner unless given)'

export interface CommandIo {
  /** The password: the first line of standard input, or a prompt. */
  readPassword: () => Promise<string>
  stdout: (line: string) => void
  stderr: (line: string) => void
  /** Environment (process.env) and .env file to read the configuration from. */
  env: Record<string, string | undefined>
  dotEnvPath?: string
}

/** The command itself, apart from the process: resolves with the exit code. */
export async function createAdminCommand (argv: string[], io: CommandIo): Promise<number> {
  const fail = (message: string): number => { io.stderr(`roster: ${message}\n`); return 1 }
  let args
  try {
    args = parseArgs({ args: argv, options: { email: { type: 'string' }, name: { type: 'string' }, role: { type: 'string', default: 'owner' } }, strict: true }).values
  } catch (err) {
    return fail(`${(err as Error).message}\n${USAGE}`)
  }
  const { email, name, role } = args
  if (email === undefined || name === undefined) return fail(USAGE)
  if (!(ROLES as readonly string[]).includes(role)) return fail(`role must be one of ${ROLES.join(', ')}\n${USAGE}`)
  const emailRefused = emailProblem(email)
  const nameRefused = nameProblem(name)
  const problems = [emailRefused === null ? '' : `email ${emailRefused}`, nameRefused === null ? '' : `name ${nameRefused}`].filter((p) => p !== '')
  if (problems.length > 0) return fail(problems.join('; '))

  let config: Config
  try {
    config = loadConfig(io.env, io.dotEnvPath, { server: false })
  } catch (err) {
    return fail((err as ConfigError).message)
  }
  let password: string
  try {
    password = await io.readPassword()
  } catch (err) {
    return fail((err as Error).message)
  }
  const refused = (await loadPasswordPolicy())(password, { emails: [email], names: [name] })
  if (refused !== null) return fail(`password ${refused}`)

  const { pool, close } = await openDatabase(config)
  let code: number
  try {
    if (config.MIGRATE_ON_START) await runMigrations(pool)
    const passwordHash = await hashPassword(password, argon2Params(config))
    const admins = createAdminsRepository(pool)
    const admin = await transaction(pool, async (tx) => {
      const row = await admins.insert(tx, { email, name, passwordHash, confirmed: true, role: role as Role })
      const changes = { email: row.email, name: row.name, confirmed: true, role: row.role }
      await recordAudit(tx, { actor: null, action: 'admin.register', targetType: 'admin', targetId: row.id, requestId: 'create-admin', changes })
      await recordEvents(tx, [adminEvent('admin.register', row.id, changes)])
      return row
    })
    io.stdout(`roster: admin ${admin.name} <${admin.email}> created and confirmed, role ${admin.role} (id ${admin.id})\n`)
    code = 0
  } catch (err) {
    // The first line only: a failed query's second line lists its parameters.
    code = fail(`could not create the admin: ${(err as Error).message.split('\n')[0] as string}`)
  }
  await close()
  return code
}

/** The first line of standard input (piped), or a prompt without echo (terminal). */
async function readPassword (): Promise<string> {
  /* c8 ignore start -- needs a terminal; the tests pipe the password */
  if (process.stdin.isTTY) {
    const ask = async (question: string): Promise<string> => await new Promise((resolve, reject) => {
      process.stderr.write(question)
      process.stdin.setRawMode(true)
      process.stdin.resume()
      let typed = ''
      const done = (): void => {
        process.stdin.setRawMode(false)
        process.stdin.pause()
        process.stdin.off('data', onData)
        process.stderr.write('\n')
      }
      const onData = (chunk: Buffer): void => {
        for (const c of chunk.toString('utf8')) {
          if (c === '\u0003') { done(); reject(new Error('cancelled')); return }
          if (c === '\r' || c === '\n' || c === '\u0004') { done(); resolve(typed); return }
          typed = c === '\u007f' || c === '\b' ? [...typed].slice(0, -1).join('') : typed + c
        }
      }
      process.stdin.on('data', onData)
    })
    const first = await ask('Password: ')
    if (await ask('Password again: ') !== first) throw new Error('the passwords differ')
    return first
  }
  /* c8 ignore stop */
  let input = ''
  for await (const chunk of process.stdin) input += String(chunk)
  return input.split(/\r?\n/)[0] as string
}

// Run as a program (npm run create-admin), not when imported by the tests.
if (realpathSync(process.argv[1] as string) === fileURLToPath(import.meta.url)) {
  process.exit(await createAdminCommand(process.argv.slice(2), {
    readPassword,
    stdout: process.stdout.write.bind(process.stdout),
    stderr: process.stderr.write.bind(process.stderr),
    env: process.env
  }))
}
