/** The channel on which ended sessions are announced to every instance; the payload lists their ids, comma-separated. */
export const SESSIONS_ENDED_CHANNEL = 'roster_sessions_ended'

/** Ids per notification: a NOTIFY payload must stay under 8000 bytes (36 + 1 each). */
const IDS_PER_NOTIFICATION = 200

/** The NOTIFY payloads announcing that these sessions ended. */
export function endedPayloads (sessionIds: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < sessionIds.length; i += IDS_PER_NOTIFICATION) out.push(sessionIds.slice(i, i + IDS_PER_NOTIFICATION).join(','))
  return out
}

/** Most sessions remembered; past it the cache starts over (each entry costs a database check again, nothing more). */
const MAX_ENTRIES = 100_000

/**
 * Which sessions this instance found live, and until when it trusts that
 * without asking the database again (SESSION_CACHE_TTL): the bound on how long
 * a session ended elsewhere can still be used here when its notification is
 * missed. Ended sessions are forgotten at once on their notification.
 */
export class LiveSessionCache {
  private readonly liveUntil = new Map<string, { sub: string, until: number }>()

  constructor (private readonly ttl: number) {}

  /** True while `sid` of `sub` was found live less than the TTL ago. */
  isLive (sid: string, sub: string, now: number): boolean {
    const cached = this.liveUntil.get(sid)
    return cached !== undefined && cached.sub === sub && cached.until > now
  }

  remember (sid: string, sub: string, now: number): void {
    if (this.liveUntil.size >= MAX_ENTRIES) this.liveUntil.clear()
    this.liveUntil.set(sid, { sub, until: now + this.ttl })
  }

  forget (sessionIds: Iterable<string>): void {
    for (const id of sessionIds) this.liveUntil.delete(id)
  }

  /** Forgets everything: notifications may have been missed (the LISTEN connection was lost). */
  clear (): void {
    this.liveUntil.clear()
  }

  get size (): number {
    return this.liveUntil.size
  }
}
