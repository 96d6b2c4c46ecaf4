import { createHash, createHmac, randomBytes } from 'node:crypto'

/**
 * TOTP (RFC 6238 over RFC 4226's HOTP): HMAC-SHA-1, 6 digits, 30-second steps,
 * the parameters every authenticator app defaults to. Secrets are 20 random
 * bytes (160 bits, RFC 4226's recommendation), shown as RFC 4648 base32.
 */
export const TOTP = { digits: 6, period: 30, algorithm: 'SHA1', secretBytes: 20 } as const

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

export function base32 (bytes: Buffer): string {
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31]
  return out
}

export function newTotpSecret (): Buffer {
  return randomBytes(TOTP.secretBytes)
}

/** The 6-digit code of a time step (RFC 4226 §5.3 dynamic truncation). */
export function hotp (secret: Buffer, step: number): string {
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(step))
  const mac = createHmac('sha1', secret).update(counter).digest()
  const offset = (mac[mac.length - 1] as number) & 0xf
  const binary = mac.readUInt32BE(offset) & 0x7fffffff
  return String(binary % 10 ** TOTP.digits).padStart(TOTP.digits, '0')
}

/** The time step of a moment (ms since the epoch). */
export function timeStep (now: number): number {
  return Math.floor(now / 1000 / TOTP.period)
}

/**
 * The step whose code `code` is, among the current step and one step either
 * side (clock skew), newer than `lastStep` (a code is accepted once); null
 * when none matches.
 */
export function matchingStep (secret: Buffer, code: string, lastStep: number | null, now = Date.now()): number | null {
  const current = timeStep(now)
  for (const step of [current, current - 1, current + 1]) {
    if (lastStep !== null && step <= lastStep) continue
    if (hotp(secret, step) === code) return step
  }
  return null
}

/** The otpauth:// URI (Key Uri Format) an authenticator app reads from a QR code. */
export function otpauthUri (secret: Buffer, issuer: string, account: string): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`
  const params = new URLSearchParams({ secret: base32(secret), issuer, algorithm: TOTP.algorithm, digits: String(TOTP.digits), period: String(TOTP.period) })
  return `otpauth://totp/${label}?${params.toString()}`
}

/** HKDF purpose of the key that encrypts TOTP secrets at rest (./secret-box.ts). */
export const TOTP_SECRET_PURPOSE = 'totp secret'

/** A recovery code as stored: SHA-256 of its normalised form (lower case, no spaces or dashes); 80 random bits need no slow hash. */
export function recoveryCodeHash (code: string): string {
  return createHash('sha256').update(code.toLowerCase().replace(/[\s-]/g, '')).digest('base64url')
}

/** Ten recovery codes of 16 base32 characters (80 bits) each, shown as `abcd-efgh-ijkl-mnop`. */
export function newRecoveryCodes (count = 10): string[] {
  return Array.from({ length: count }, () => base32(randomBytes(10)).toLowerCase().match(/.{4}/g)?.join('-') as string)
}
