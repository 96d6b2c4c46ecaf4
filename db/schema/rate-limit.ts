import { pgTable, text, timestamp, integer, index } from 'drizzle-orm/pg-core'

/**
 * The per-IP request counters of the /auth rate limit, shared by every
 * instance (src/infra/rate-limit-store.ts): one row per route and client
 * address, counting the requests of its current fixed window. UNLOGGED
 * (migration 0005, by hand): no WAL for a counter written on every /auth
 * request; a crash of PostgreSQL empties it, which only restarts the windows.
 */
export const rateLimitHits = pgTable('rate_limit_hits', {
  /** `<route> <client address>` */
  key: text().primaryKey(),
  hits: integer().notNull(),
  resetAt: timestamp({ withTimezone: true, mode: 'date' }).notNull()
}, (t) => [
  index('rate_limit_hits_reset_at_idx').on(t.resetAt)
])
