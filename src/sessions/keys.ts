import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface VerifyingKey {
  kid: string
  /** SPKI PEM */
  pem: string
  jwk: { kty: 'OKP', crv: 'Ed25519', x: string, kid: string, alg: 'EdDSA', use: 'sig' }
}

export interface KeySet {
  /** PKCS#8 PEM of the signing key. */
  privatePem: string
  /** kid of the signing key. */
  kid: string
  /** Every key that verifies: the signing key first, then previous keys kept for rotation. */
  verifying: VerifyingKey[]
}

/** RFC 7638 JWK thumbprint of an Ed25519 public key: the `kid`. */
function describe (key: KeyObject): VerifyingKey {
  const { x } = key.export({ format: 'jwk' }) as { x: string }
  const kid = createHash('sha256').update(JSON.stringify({ crv: 'Ed25519', kty: 'OKP', x })).digest('base64url')
  return {
    kid,
    pem: key.export({ format: 'pem', type: 'spki' }).toString(),
    jwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' }
  }
}

/** The verifying key of an Ed25519 public key in SPKI PEM (one recorded in signing_keys). */
export function verifyingKey (pem: string): VerifyingKey {
  return describe(createPublicKey(pem))
}

function ed25519 (key: KeyObject, what: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${what} must be an Ed25519 key (got ${String(key.asymmetricKeyType)})`)
  return key
}

export class KeyConfigError extends Error {
  override name = 'KeyConfigError'
}

/** JWT_PRIVATE_KEY as a key object; a KeyConfigError when it is not a usable Ed25519 private key. */
function privateKeyOf (pem: string): KeyObject {
  try {
    return ed25519(createPrivateKey(pem), 'JWT_PRIVATE_KEY')
  } catch (err) {
    throw new KeyConfigError(`JWT_PRIVATE_KEY is not a usable Ed25519 private key: ${(err as Error).message}`)
  }
}

/** The keys of JWT_PREVIOUS_PUBLIC_KEYS; a KeyConfigError when one is not a usable Ed25519 public key. */
function previousKeysOf (pems: string): VerifyingKey[] {
  return (pems.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? []).map((pem) => {
    try {
      return describe(ed25519(createPublicKey(pem), 'JWT_PREVIOUS_PUBLIC_KEYS'))
    } catch (err) {
      throw new KeyConfigError(`JWT_PREVIOUS_PUBLIC_KEYS holds a key that is not a usable Ed25519 public key: ${(err as Error).message}`)
    }
  })
}

const MISSING_KEY = 'JWT_PRIVATE_KEY (or JWT_PRIVATE_KEY_FILE) is required when NODE_ENV=production: every instance must sign with the same Ed25519 key. Generate one with: openssl genpkey -algorithm ed25519'

/**
 * What is wrong with the configured keys, without generating any: for the
 * checks made before anything starts (src/config.ts).
 */
export function keyProblems (opts: { privateKey?: string | undefined, previousPublicKeys: string, production: boolean }): string[] {
  const problems: string[] = []
  const check = (fn: () => unknown): void => {
    try { fn() } catch (err) { problems.push((err as Error).message) }
  }
  if (opts.privateKey !== undefined) check(() => privateKeyOf(opts.privateKey as string))
  else if (opts.production) problems.push(MISSING_KEY)
  check(() => previousKeysOf(opts.previousPublicKeys))
  return problems
}

/**
 * The access-token keys. The signing key comes from JWT_PRIVATE_KEY; without
 * one, outside production, a key is generated once and kept in DATA_DIR so
 * restarts keep tokens valid. In production a missing key is an error: every
 * instance must sign with the same key.
 */
export function loadKeys (opts: { privateKey?: string, previousPublicKeys: string, production: boolean, dataDir: string }): KeySet {
  let privatePem = opts.privateKey
  if (privatePem === undefined) {
    if (opts.production) throw new KeyConfigError(MISSING_KEY)
    const file = join(opts.dataDir, 'jwt-ed25519.pem')
    if (!existsSync(file)) {
      mkdirSync(opts.dataDir, { recursive: true })
      const { privateKey } = generateKeyPairSync('ed25519')
      writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 })
    }
    privatePem = readFileSync(file, 'utf8')
  }
  const privateKey = privateKeyOf(privatePem)
  const current = describe(createPublicKey(privateKey))
  const previous = previousKeysOf(opts.previousPublicKeys)
  return { privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), kid: current.kid, verifying: [current, ...previous] }
}
