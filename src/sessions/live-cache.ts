import { BoundedCache, ENTRY_OVERHEAD, stringBytes } from '../infra/bounded-cache.ts'

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
 * Most entries remembered, and most bytes: an entry is a session id (or a
 * client's key), its holder's and what the check found (a role, or a few
 * scopes), about 300 bytes as BoundedCache counts them; past either bound the
 * entry checked longest ago goes (it costs a database check again, nothing more).
 */
export const SESSION_CACHE_ENTRIES = 10_000
export const SESSION_CACHE_BYTES = 4 * 1024 * 1024

interface Checked<T> { sub: string, until: number, found: T }

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
  private readonly liveUntil = new BoundedCache<string, Checked<T>>({
    maxEntries: SESSION_CACHE_ENTRIES,
    maxBytes: SESSION_CACHE_BYTES,
    sizeOf: (key, checked) => ENTRY_OVERHEAD + stringBytes(key) + stringBytes(checked.sub) + 8 + stringBytes(JSON.stringify(checked.found) ?? '')
  })

  /** How many times keys were forgotten (or everything cleared): see mark. */
  private forgotten = 0

  constructor (private readonly ttl: number) {}

  /**
   * Taken before a database check and given to remember: a check that was in
   * flight while keys were forgotten may have read what their notification
   * ended, so it answers its request but is not remembered (it would be
   * trusted for the TTL after the end was announced).
   */
  get mark (): number {
    return this.forgotten
  }

  /** What was found for `key` of `sub` less than the TTL ago; undefined when nothing (or too old). */
  get (key: string, sub: string, now: number): T | undefined {
    const cached = this.liveUntil.peek(key)
    return cached !== undefined && cached.sub === sub && cached.until > now ? cached.found : undefined
  }

  remember (key: string, sub: string, found: T, now: number, mark = this.forgotten): void {
    if (mark !== this.forgotten) return
    // Made the newest: the order of the entries is the order of the checks (get only peeks), the oldest out first.
    this.liveUntil.set(key, { sub, until: now + this.ttl, found })
  }

  forget (keys: Iterable<string>): void {
    this.forgotten++
    for (const key of keys) this.liveUntil.delete(key)
  }

  /** Forgets everything: notifications may have been missed (the LISTEN connection was lost). */
  clear (): void {
    this.forgotten++
    this.liveUntil.clear()
  }

  get size (): number {
    return this.liveUntil.size
  }

  /** Bytes held, as BoundedCache estimates them. */
  get bytes (): number {
    return this.liveUntil.bytes
  }
}
