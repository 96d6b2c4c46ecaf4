import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/** 32 random bytes, base64url: refresh tokens and emailed single-use tokens. */
export function randomToken (): string {
  return randomBytes(32).toString('base64url')
}

/** What is stored for a token: its SHA-256, base64url. The token itself never is. */
export function hashToken (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/** HMAC-SHA256 keyed by SECRET_KEY (cursors, idempotency fingerprints), base64url. */
export function hmac (key: string, data: string): string {
  return createHmac('sha256', key).update(data).digest('base64url')
}

export function safeEqual (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
