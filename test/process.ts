import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { rootDir } from '../src/infra/paths.ts'

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface Captured {
  child: ChildProcessByStdio<Writable | null, Readable, Readable>
  /** Everything written to stdout / stderr so far. */
  stdout: () => string
  stderr: () => string
  /** Resolves once the process has exited and its output streams are closed. */
  exit: Promise<Exit>
  /** The exit, once there is one; null while it runs. */
  exited: () => Exit | null
}

/**
 * THE spawn-and-capture helper: runs node with `args` in the project root,
 * collecting stdout and stderr. `stdin: 'pipe'` to write to it.
 */
export function spawnCaptured (args: string[], opts: { env?: NodeJS.ProcessEnv, stdin?: 'pipe' | 'ignore' } = {}): Captured {
  const child = spawn(process.execPath, args, { cwd: rootDir, env: opts.env ?? process.env, stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'] }) as ChildProcessByStdio<Writable | null, Readable, Readable>
  let stdout = ''
  let stderr = ''
  let exited: Exit | null = null
  child.stdout.on('data', (d) => { stdout += String(d) })
  child.stderr.on('data', (d) => { stderr += String(d) })
  const exit = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => {
      exited = { code, signal }
      resolve(exited)
    })
  })
  return { child, stdout: () => stdout, stderr: () => stderr, exit, exited: () => exited }
}

/**
 * Runs one of Roster's TypeScript entry points (src/server.ts, a command) as
 * npm would, with the loader tap runs tests with (so coverage follows it).
 */
export function spawnEntry (file: string, env: NodeJS.ProcessEnv, opts: { stdin?: 'pipe' | 'ignore', args?: string[] } = {}): Captured {
  return spawnCaptured([...process.execArgv, join(rootDir, file), ...(opts.args ?? [])], { env: { ...process.env, ...env }, ...(opts.stdin === undefined ? {} : { stdin: opts.stdin }) })
}

/** The JSON log lines a process writes to `stream` (its stdout), parsed as they arrive; other lines are skipped. */
export function jsonLines<T> (stream: Readable): T[] {
  const lines: T[] = []
  let partial = ''
  stream.on('data', (d) => {
    const parts = (partial + String(d)).split('\n')
    partial = parts.pop() as string
    for (const p of parts) if (p.startsWith('{')) lines.push(JSON.parse(p) as T)
  })
  return lines
}
