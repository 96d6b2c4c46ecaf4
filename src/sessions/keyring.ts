import type { FastifyBaseLogger } from 'fastify'
import { verifyingKey, type KeySet, type VerifyingKey } from './keys.ts'
import type { RecordedKey, SessionsRepository } from './repository.ts'

/** How often each instance records that it still holds its keys (and learns the others'). */
export const KEY_HEARTBEAT = 60_000
/** Shortest time between two reloads of the recorded keys for a kid not known here. */
export const RELOAD_EVERY = 1000

export interface KeyringDeps {
  repository: Pick<SessionsRepository, 'recordKeys' | 'publishedKeys'>
  /** This instance's keys: JWT_PRIVATE_KEY (or DATA_DIR's) and JWT_PREVIOUS_PUBLIC_KEYS. */
  keys: KeySet
  /** This instance's `iss`. */
  issuer: string
  /** ACCESS_TOKEN_TTL, seconds. */
  accessTokenTtl: number
  log: FastifyBaseLogger
}

/** A finding about the fleet's keys, said in the log each time the set of findings changes. */
interface Finding { level: 'info' | 'warn', msg: string }

/**
 * The access-token keys of the whole fleet. Each instance records the keys it
 * holds in signing_keys at start and every KEY_HEARTBEAT, and verifies with
 * every key some instance held within ACCESS_TOKEN_TTL (plus two heartbeats):
 * a token signed anywhere in the fleet verifies everywhere, during a key
 * rotation too, and the JWKS publishes exactly that set. Where instances
 * disagree (another signing key, another issuer) each says so in its log, at
 * start and whenever that changes; a kid unknown here is looked up again (at
 * most once per RELOAD_EVERY) before a token is refused, for an instance that
 * has just started.
 */
export function createKeyring ({ repository, keys, issuer, accessTokenTtl, log }: KeyringDeps) {
  const twoBeats = Math.ceil(2 * KEY_HEARTBEAT / 1000)
  const window = { seen: accessTokenTtl + twoBeats, signing: twoBeats }
  const own = new Map(keys.verifying.map((k) => [k.kid, k]))
  const previous = new Set(keys.verifying.slice(1).map((k) => k.kid))
  let known = new Map(own)
  let loadedAt = 0
  let loading: Promise<void> | null = null
  let reported = ''
  let heartbeat: NodeJS.Timeout | undefined

  function adopt (rows: RecordedKey[]): void {
    const next = new Map(own)
    for (const row of rows) if (!next.has(row.kid)) next.set(row.kid, verifyingKey(row.pem))
    known = next
    loadedAt = Date.now()
  }

  function findings (rows: RecordedKey[]): Finding[] {
    const out: Finding[] = []
    const minutes = Math.round(window.signing / 60)
    for (const row of rows.filter((r) => r.signing)) {
      if (row.kid !== keys.kid && previous.has(row.kid)) {
        out.push({ level: 'info', msg: `an instance still signs access tokens with the previous key ${row.kid} (a key rotation under way): its tokens verify here; this instance signs with ${keys.kid}` })
      } else if (row.kid !== keys.kid) {
        out.push({ level: 'warn', msg: `another instance signs access tokens with another key (kid ${row.kid}) than this one (kid ${keys.kid}): the keys are shared through the database, so each verifies the other's tokens, but every instance should have the same JWT_PRIVATE_KEY (while rotating, the old public key in JWT_PREVIOUS_PUBLIC_KEYS)` })
      }
      if (row.issuer !== issuer) {
        out.push({ level: 'warn', msg: `an instance issued access tokens as ${row.issuer} (kid ${row.kid}, within the last ${minutes} minutes); this instance issues and accepts ${issuer} only, so it refuses them: set the same PUBLIC_URL (or JWT_ISSUER) on every instance` })
      }
    }
    return out
  }

  function report (rows: RecordedKey[]): void {
    const now = findings(rows)
    const text = JSON.stringify(now)
    if (text === reported) return
    reported = text
    for (const f of now) log[f.level](f.msg)
  }

  async function record (): Promise<void> {
    const rows = await repository.recordKeys({ signing: keys.kid, issuer, keys: keys.verifying.map((k) => ({ kid: k.kid, pem: k.pem })) }, window)
    adopt(rows)
    report(rows)
  }

  /** One heartbeat: `record`, a failure logged (the next beat tries again). */
  async function beat (): Promise<void> {
    await record().catch((err: unknown) => { log.warn({ err }, 'could not record the signing keys (tried again in a minute)') })
  }

  return {
    /** kid -> key of every key that verifies here, the signing key first (the JWKS). */
    get keys (): VerifyingKey[] { return [...known.values()] },

    /** Records this instance's keys, learns the others' and reports disagreements. Rejects when the database does. */
    record,
    beat,

    /** Beats every KEY_HEARTBEAT from now on. */
    start (): void {
      heartbeat = setInterval(beat, KEY_HEARTBEAT).unref()
    },

    stop (): void {
      clearInterval(heartbeat)
    },

    /** The key of `kid`, looking the recorded keys up again when it is not known here; undefined when none has it. */
    async keyFor (kid: string): Promise<VerifyingKey | undefined> {
      if (!known.has(kid) && Date.now() - loadedAt >= RELOAD_EVERY) {
        loading ??= repository.publishedKeys(window).then(adopt).finally(() => { loading = null })
        await loading
      }
      return known.get(kid)
    },

    /** Why a token with this kid and issuer is refused here, for the log line of its 401 (undefined: neither is the reason). */
    explain (kid: unknown, tokenIssuer: unknown): string | undefined {
      if (typeof kid !== 'string' || !known.has(kid)) {
        return `token kid ${String(kid)} unknown here (known: ${[...known.keys()].join(', ')}): signed by an instance with another JWT_PRIVATE_KEY on another database, or by a key no instance has held for longer than ACCESS_TOKEN_TTL?`
      }
      if (tokenIssuer !== issuer) {
        return `token issuer ${String(tokenIssuer)} is not this instance's ${issuer}: PUBLIC_URL (or JWT_ISSUER) differs between the instances?`
      }
      return undefined
    }
  }
}

export type Keyring = ReturnType<typeof createKeyring>
