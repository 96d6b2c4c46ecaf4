import { hash, verify, parseOptions } from '@node-rs/argon2'

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
  return await hash(normalisePassword(password), params)
}

export async function verifyPassword (stored: string, password: string): Promise<boolean> {
  return await verify(stored, normalisePassword(password))
}

/** True when a stored hash was made with other parameters than the configured ones (upgrade it on login). */
export function needsRehash (stored: string, params: Argon2Params): boolean {
  const used = parseOptions(stored)
  return used.algorithm !== 2 || used.memoryCost !== params.memoryCost || used.timeCost !== params.timeCost || used.parallelism !== params.parallelism
}

/**
 * A hash of a random password at the configured cost, verified against when
 * the email is unknown so that unknown and known emails take the same time.
 */
export async function dummyHash (params: Argon2Params): Promise<string> {
  return await hash(`dummy-${Math.random()}-${Date.now()}`, params)
}

/** The configured argon2 cost (ARGON2_MEMORY, ARGON2_TIME, ARGON2_PARALLELISM). */
export function argon2Params (config: { ARGON2_MEMORY: number, ARGON2_TIME: number, ARGON2_PARALLELISM: number }): Argon2Params {
  return { memoryCost: config.ARGON2_MEMORY, timeCost: config.ARGON2_TIME, parallelism: config.ARGON2_PARALLELISM }
}
