/**
 * `npm test`: starts one embedded PostgreSQL for the whole run (unless
 * TEST_DATABASE_URL names a server), then runs tap. Each test file creates its
 * own database on that server (test/helper.ts), so files run in parallel.
 */
import { spawn } from 'node:child_process'
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { startEmbeddedPostgres, type EmbeddedServer } from '../db/embedded.ts'
import { rootDir } from '../src/infra/paths.ts'

let embedded: EmbeddedServer | undefined
let dir: string | undefined
// Test files run TypeScript through tsx; tell @fastify/autoload it may load .ts plugins.
const env: NodeJS.ProcessEnv = { ...process.env, FASTIFY_AUTOLOAD_TYPESCRIPT: '1' }
if (env.TEST_DATABASE_URL === undefined || env.TEST_DATABASE_URL === '') {
  // A data directory of this run's own, so that several runs may go on at once.
  await mkdir(join(rootDir, '.data'), { recursive: true })
  dir = await mkdtemp(join(rootDir, '.data', 'test-postgres-'))
  await chmod(dir, 0o755)
  embedded = await startEmbeddedPostgres(dir, { database: 'postgres' })
  env.TEST_DATABASE_URL = embedded.url
  process.stdout.write(`# test PostgreSQL (embedded) at ${embedded.url.replace(/:[^:@/]*@/, ':***@')}\n`)
}

/**
 * The failures, each with the file and subtests it is in, read from tap's
 * output as it passes through: repeated after the summary, so that a log that
 * keeps only its end (a CI's) still names what failed.
 */
const failures: string[] = []
const subtests: string[] = []
function readTap (line: string): void {
  const subtest = /^( *)# Subtest: (.*)$/.exec(line)
  if (subtest !== null) {
    const depth = Math.floor((subtest[1] as string).length / 4)
    subtests.length = depth
    subtests[depth] = subtest[2] as string
    return
  }
  const failed = /^( *)not ok \d+ - (.*?)(?: # time=[\d.]+m?s)?$/.exec(line)
  if (failed !== null) failures.push([...subtests.slice(0, Math.floor((failed[1] as string).length / 4)), failed[2]].join(' > '))
}

const code = await new Promise<number>((resolve) => {
  // On a terminal tap keeps its own reporter (and a person reads it whole); elsewhere its TAP is read on the way.
  const tty = process.stdout.isTTY
  const child = spawn(process.execPath, [join(rootDir, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs'), ...process.argv.slice(2)], { stdio: ['inherit', tty ? 'inherit' : 'pipe', 'inherit'], env })
  if (child.stdout !== null) {
    child.stdout.pipe(process.stdout)
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', readTap)
  }
  const forward = (sig: NodeJS.Signals): void => { child.kill(sig) }
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  child.on('close', (c, signal) => resolve(c ?? (signal !== null ? 1 : 0)))
})
if (failures.length > 0) process.stdout.write(`\n# not ok, repeated from above (each failure, then the subtests and files it failed):\n${failures.map((f) => `#   not ok: ${f}\n`).join('')}`)
if (embedded !== undefined) await embedded.stop()
if (dir !== undefined) await rm(dir, { recursive: true, force: true })
process.exit(code)
