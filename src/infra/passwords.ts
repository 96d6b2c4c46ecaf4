import { randomBytes } from 'node:crypto'

/**
 * @node-rs/argon2 (a native library, about 3 MB resident) is loaded on the first
 * hash or verification, not at start: an instance that serves no login has no use for it.
 */
let argon2: Promise<typeof import('@node-rs/argon2')> | undefined
const loadArgon2 = async (): Promise<typeof import('@node-rs/argon2')> => await (argon2 ??= import('@node-rs/argon2'))

export interface Argon2Params {
  memoryCost: number
  timeCost: number
  parallelism: number
}

/**
 * Passwords are hashed and compared in Unicode NFKC form (NIST SP 800-63B), so
 * that the same characters typed on another keyboard or system still match.
 */
export function normalisePassword (password: string): string {
  return password.normalize('NFKC')
}

/** argon2id (the library's default algorithm) at the configured cost, of the NFKC form of the password. */
export async function hashPassword (password: string, params: Argon2Params): Promise<string> {
  return await (await loadArgon2()).hash(normalisePassword(password), params)
}

export async function verifyPassword (stored: string, password: string): Promise<boolean> {
  return await (await loadArgon2()).verify(stored, normalisePassword(password))
}

/** The parameters of a PHC-format argon2 hash: `$argon2id$v=19$m=19456,t=2,p=1$salt$hash`. */
const PHC = /^\$(argon2(?:id|i|d))\$v=\d+\$m=(\d+),t=(\d+),p=(\d+)\$/

/** True when a stored hash was made with other parameters than the configured ones (upgrade it on login). */
export function needsRehash (stored: string, params: Argon2Params): boolean {
  const used = PHC.exec(stored)
  return used === null || used[1] !== 'argon2id' || Number(used[2]) !== params.memoryCost || Number(used[3]) !== params.timeCost || Number(used[4]) !== params.parallelism
}

/**
 * A hash verified against when the email is unknown, so that unknown and
 * known emails take the same time. Verifying costs what its parameters say
 * (the configured ones), whatever the salt and hash bytes: random ones here
 * (16 and 32 bytes, as the library makes them), so that no password matches
 * and no argon2 run is needed to make it.
 */
export async function dummyHash (params: Argon2Params): Promise<string> {
  const b64 = (n: number): string => randomBytes(n).toString('base64').replace(/=+$/, '')
  return `$argon2id$v=19$m=${params.memoryCost},t=${params.timeCost},p=${params.parallelism}$${b64(16)}$${b64(32)}`
}

/** The configured argon2 cost (ARGON2_MEMORY, ARGON2_TIME, ARGON2_PARALLELISM). */
export function argon2Params (config: { ARGON2_MEMORY: number, ARGON2_TIME: number, ARGON2_PARALLELISM: number }): Argon2Params {
  return { memoryCost: config.ARGON2_MEMORY, timeCost: config.ARGON2_TIME, parallelism: config.ARGON2_PARALLELISM }
}
