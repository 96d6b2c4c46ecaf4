import { spawnSync } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'

/** What the benchmarks read of a process from /proc: its resident memory and CPU time. */

const TICK_MS = 1000 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100)

/** /proc/<pid>/stat's fields after the command name in parentheses (the state is [0], the parent [1]). */
async function statFields (path: string): Promise<string[]> {
  return (await readFile(path, 'utf8')).split(') ')[1]?.split(' ') ?? []
}
const cpuOf = (fields: string[]): number => (Number(fields[11]) + Number(fields[12])) * TICK_MS

/** How long an idle server is left alone before its RSS is read. */
export const SETTLE_MS = 5000

/**
 * `--rest S` in milliseconds: when an idle instance's RSS is read again, at
 * rest (V8's memory reducer compacts an idle heap on its own some 15–90 s
 * after the start's last collections: bench/README "Memory"). 0 skips it.
 */
export function restMs (seconds: string): number {
  const ms = Number(seconds) * 1000
  if (!Number.isFinite(ms) || (ms !== 0 && ms < SETTLE_MS)) throw new Error(`--rest: 0, or at least ${SETTLE_MS / 1000} seconds`)
  return ms
}

/** A process's resident set, MB. */
export async function rssMb (pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024
}

/** CPU time (ms, user + system) a process has used so far, every thread; or one thread's. */
export async function cpuMs (pid: number, thread?: number): Promise<number> {
  return cpuOf(await statFields(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`))
}

/**
 * CPU time (ms) used so far by each process of the embedded PostgreSQL whose
 * data directory is given: the postmaster (named by its postmaster.pid) and
 * its children, the backends among them, by pid.
 */
export async function postgresCpuMs (dataDir: string): Promise<Map<number, number>> {
  const postmaster = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0])
  const cpu = new Map<number, number>()
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const fields = await statFields(`/proc/${entry}/stat`)
      if (Number(entry) === postmaster || Number(fields[1]) === postmaster) cpu.set(Number(entry), cpuOf(fields))
    } catch { /* exited meanwhile */ }
  }
  return cpu
}
