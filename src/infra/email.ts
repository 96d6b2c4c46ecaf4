/** The key under which an email address is unique and throttled: trimmed, lower case. */
export function normaliseEmail (email: string): string {
  return email.trim().toLowerCase()
}

/** Longest local part (before `@`) and domain, in octets (RFC 5321, 4.5.3.1). Addresses are ASCII here, so octets are characters. */
export const LOCAL_PART_MAX = 64
export const DOMAIN_MAX = 255

/** An RFC 5322 dot-atom local part at an RFC 1035 host name of at least two labels, each of 1–63 letters, digits and inner hyphens. */
const EMAIL = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i

/**
 * THE email address check, the `format: 'email'` of every request schema
 * (src/infra/validation.ts) and of the create-admin command: ASCII dot-atom
 * `local@domain`, the local part at most 64 octets and the domain at most 255
 * (RFC 5321). The whole address's bound (254) is the schemas' maxLength.
 */
export function isEmail (value: string): boolean {
  const at = value.lastIndexOf('@')
  return at > 0 && at <= LOCAL_PART_MAX && value.length - at - 1 <= DOMAIN_MAX && EMAIL.test(value)
}
