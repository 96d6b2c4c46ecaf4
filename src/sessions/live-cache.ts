/**
 * The channel on which ended sessions (and changed admins' sessions, deleted API
 * clients: clientKey) are announced to every instance; the payload lists their
 * keys, comma-separated.
 */
export const SESSIONS_ENDED_CHANNEL = 'roster_sessions_ended'

/** Keys per notification: a NOTIFY payload must stay under 8000 bytes (at most 43 + 1 each: clientKey). */
const IDS_PER_NOTIFICATION = 150

/** The NOTIFY payloads announcing that the checks cached under these keys are void. */
export function endedPayloads (keys: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < keys.length; i += IDS_PER_NOTIFICATION) out.push(keys.slice(i, i + IDS_PER_NOTIFICATION).join(','))
  return out
}

/** The key of an API client in the cache and in a SESSIONS_ENDED_CHANNEL payload (a session's key is its id). */
export const clientKey = (clientId: string): string => `client:${clientId}`

/**
 * Most entries remembered: an entry is a session id (or a client's key), its
 * holder's and what the check found (a role, or a few scopes), about 300
 * bytes, so at most about 3 MB; past it the entry checked longest ago goes
 * (it costs a database check again, nothing more).
 */
export const SESSION_CACHE_ENTRIES = 10_000

/**
 * What this instance found about the holders of access tokens (a live
 * session, with its admin's role and MFA state; an API client that still
 * exists, with its scopes), and until when it trusts that without asking the
 * database again (SESSION_CACHE_TTL): the bound on how long a session ended
 * (or a role changed, a client deleted) elsewhere can still be used here when
 * its notification is missed. Entries are forgotten at once on their
 * notification. Keyed by session id, or clientKey(client id).
 */
export class LiveSessionCache<T> {
  private readonly liveUntil = new Map<string, { sub: string, until: number, found: T }>()

  constructor (private readonly ttl: number) {}

  /** What was found for `key` of `sub` less than the TTL ago; undefined when nothing (or too old). */
  get (key: string, sub: string, now: number): T | undefined {
    const cached = this.liveUntil.get(key)
    return cached !== undefined && cached.sub === sub && cached.until > now ? cached.found : undefined
  }

  remember (key: string, sub: string, found: T, now: number): void {
    // Deleted first, so that the Map's order is the order of the checks: the first entry is the oldest.
    this.liveUntil.delete(key)
    if (this.liveUntil.size >= SESSION_CACHE_ENTRIES) this.liveUntil.delete(this.liveUntil.keys().next().value as string)
    this.liveUntil.set(key, { sub, until: now + this.ttl, found })
  }

  forget (keys: Iterable<string>): void {
    for (const key of keys) this.liveUntil.delete(key)
  }

  /** Forgets everything: notifications may have been missed (the LISTEN connection was lost). */
  clear (): void {
    this.liveUntil.clear()
  }

  get size (): number {
    return this.liveUntil.size
  }
}
