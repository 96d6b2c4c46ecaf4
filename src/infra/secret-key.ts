import { randomBytes } from 'node:crypto'
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export class SecretKeyConfigError extends Error {
  override name = 'SecretKeyConfigError'
}

export const MISSING_SECRET_KEY = 'SECRET_KEY (or SECRET_KEY_FILE) is required when NODE_ENV=production: every instance must use the same key for list cursors and idempotency fingerprints. Generate one with: openssl rand -base64 32'

/** Where the generated development SECRET_KEY is kept, under DATA_DIR. */
export const SECRET_KEY_FILE = 'secret-key'

/**
 * SECRET_KEY, the key of Roster's own HMACs (list cursors, idempotency
 * fingerprints). Given: used as is. Unset outside production: 32 random bytes
 * are generated once and kept in DATA_DIR/secret-key (mode 0600), so restarts
 * keep cursors and idempotency keys valid. Unset in production: an error, since
 * every instance must use the same key.
 */
export function loadSecretKey (opts: { secretKey?: string | undefined, production: boolean, dataDir: string }): string {
  if (opts.secretKey !== undefined) return opts.secretKey
  if (opts.production) {
    throw new SecretKeyConfigError(MISSING_SECRET_KEY)
  }
  const file = join(opts.dataDir, SECRET_KEY_FILE)
  mkdirSync(opts.dataDir, { recursive: true })
  // Written aside, then linked into place: link() fails when the file exists, so of two instances
  // starting at once on one DATA_DIR, one key wins and both read it whole.
  const aside = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`
  writeFileSync(aside, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 })
  try {
    linkSync(aside, file)
  } catch {
    // EEXIST: kept from an earlier start, or another instance won the race. Any other failure shows in the read below.
  } finally {
    unlinkSync(aside)
  }
  const key = readFileSync(file, 'utf8').trim()
  if (key.length < 16) throw new SecretKeyConfigError(`${file} does not hold a usable SECRET_KEY (at least 16 characters); delete it to have a new one generated`)
  return key
}
