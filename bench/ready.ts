import type { ChildProcess } from 'node:child_process'

/**
 * Waits until a Roster the benchmark started answers `/health/ready` with 200:
 * up to 2 minutes (a first start on a busy machine), and fails at once when
 * the process has exited (a configuration it refuses says why on its stderr).
 */
export async function waitReady (base: string, child: ChildProcess, name = 'Roster'): Promise<void> {
  for (let i = 0; ; i++) {
    if (child.exitCode !== null || i === 1200) throw new Error(`${name} did not start (exit code ${String(child.exitCode)}): see its output above`)
    try { if ((await fetch(`${base}/health/ready`)).ok) return } catch { /* starting */ }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
