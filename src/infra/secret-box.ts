import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

/**
 * Encryption at rest of small secrets the service must read back (TOTP
 * secrets): AES-256-GCM under a key derived from SECRET_KEY with HKDF-SHA-256
 * for one purpose, with associated data binding the ciphertext to its row (an
 * admin's id), so a ciphertext copied to another row does not decrypt.
 * Stored as `v1.<iv>.<ciphertext>.<tag>` (base64url). Changing SECRET_KEY makes
 * these unreadable (see docs/admin-accounts.md).
 */
export function createSecretBox (secretKey: string, purpose: string) {
  const key = Buffer.from(hkdfSync('sha256', secretKey, 'roster', purpose, 32))
  return {
    seal (plain: Buffer, associated: string): string {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(associated))
      const sealed = Buffer.concat([cipher.update(plain), cipher.final()])
      return ['v1', iv, sealed, cipher.getAuthTag()].map((p) => typeof p === 'string' ? p : p.toString('base64url')).join('.')
    },

    /** The plain bytes; throws when the box was not sealed by this key for this row. */
    open (box: string, associated: string): Buffer {
      const [version, iv, sealed, tag] = box.split('.')
      if (version !== 'v1' || iv === undefined || sealed === undefined || tag === undefined) throw new Error('not a sealed secret')
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url')).setAAD(Buffer.from(associated))
      decipher.setAuthTag(Buffer.from(tag, 'base64url'))
      return Buffer.concat([decipher.update(Buffer.from(sealed, 'base64url')), decipher.final()])
    }
  }
}

export type SecretBox = ReturnType<typeof createSecretBox>
