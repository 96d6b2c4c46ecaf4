/** Longest wait between two tries of one email or webhook, whatever the base and the attempt number. */
export const MAX_RETRY_DELAY = 86_400_000

/**
 * Milliseconds before the next try after `attempts` failed tries: `base`
 * doubled per further attempt, capped at `cap`, with ±20 % jitter so that
 * messages which failed together do not come back together.
 */
export function retryDelay (attempts: number, base: number, random: number = Math.random(), cap: number = MAX_RETRY_DELAY): number {
  const exact = Math.min(base * 2 ** (attempts - 1), cap)
  return Math.round(exact * (0.8 + 0.4 * random))
}
