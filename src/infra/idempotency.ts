import { hmac } from './crypto.ts'
import type { Database, Queryable } from './database.ts'

/** How long a key replays its first response. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60

/** The key of a valid header value (schemas/users.ts IDEMPOTENCY_KEY_PATTERN), quotes removed. */
export function idempotencyKey (header: string): string {
  return header.startsWith('"') ? header.slice(1, -1) : header
}

/** What a request is, for telling a retry from a different request under the same key: HMAC (SECRET_KEY) of method, path and body. */
export function requestFingerprint (secretKey: string, method: string, path: string, body: unknown): string {
  return hmac(secretKey, `${method}\n${path}\n${JSON.stringify(body)}`)
}

export interface StoredResponse {
  statusCode: number
  headers: Record<string, string>
  body: string
}

export interface KeyRecord {
  fingerprint: string
  response: StoredResponse
}

const CLAIM = {
  name: 'idempotency_claim',
  text: `INSERT INTO idempotency_keys (admin_id, key, fingerprint, expires_at)
    VALUES ($1, $2, $3, now() + make_interval(secs => $4))
    ON CONFLICT (admin_id, key) DO UPDATE SET
      fingerprint = EXCLUDED.fingerprint, status_code = NULL, response_headers = NULL, response_body = NULL,
      created_at = now(), expires_at = EXCLUDED.expires_at
    WHERE idempotency_keys.expires_at <= now()
    RETURNING 1`
}
const FIND = {
  name: 'idempotency_find',
  text: 'SELECT fingerprint, status_code AS "statusCode", response_headers AS headers, response_body AS body FROM idempotency_keys WHERE admin_id = $1 AND key = $2'
}
const STORE = {
  name: 'idempotency_store',
  text: 'UPDATE idempotency_keys SET status_code = $3, response_headers = $4, response_body = $5 WHERE admin_id = $1 AND key = $2'
}

/**
 * Idempotency keys (table idempotency_keys), scoped to the admin. Claim,
 * change and store run in one transaction: a second request with the same key
 * waits on the first one's row lock until it commits, then finds its stored
 * response; if the first rolls back, the second claims the key itself.
 */
export function createIdempotencyRepository (db: Database) {
  return {
    /**
     * Claims a key for this request, inside the caller's transaction: null when
     * claimed (new, or expired and taken over), else the live record holding the
     * first response.
     */
    async claim (tx: Queryable, adminId: string, key: string, fingerprint: string): Promise<KeyRecord | null> {
      const claimed = await tx.query({ ...CLAIM, values: [adminId, key, fingerprint, IDEMPOTENCY_TTL_SECONDS] })
      if (claimed.rowCount === 1) return null
      // A new statement, so a new snapshot: it sees the row of the transaction we waited for.
      const { rows: [row] } = await tx.query<StoredResponse & { fingerprint: string }>({ ...FIND, values: [adminId, key] })
      const { fingerprint: first, ...response } = row as StoredResponse & { fingerprint: string }
      return { fingerprint: first, response }
    },

    async store (tx: Queryable, adminId: string, key: string, response: StoredResponse): Promise<void> {
      await tx.query({ ...STORE, values: [adminId, key, response.statusCode, JSON.stringify(response.headers), response.body] })
    }
  }
}

export type IdempotencyRepository = ReturnType<typeof createIdempotencyRepository>
