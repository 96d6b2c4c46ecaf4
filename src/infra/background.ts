import type { FastifyBaseLogger } from 'fastify'

/** Work done after the answer is sent (resend, forgot): tracked so that close waits for it. */
export function createBackground (log: FastifyBaseLogger) {
  const pending = new Set<Promise<void>>()
  return {
    /** Starts `work` now without waiting for it; a failure is logged as `${what} failed`. */
    later (what: string, work: () => Promise<void>): void {
      const task: Promise<void> = work()
        .catch((err: unknown) => { log.error({ err }, `${what} failed`) })
        .finally(() => { pending.delete(task) })
      pending.add(task)
    },
    /** Resolves once the work started so far is done. */
    async drain (): Promise<void> {
      await Promise.all([...pending])
    }
  }
}

export type Background = ReturnType<typeof createBackground>
