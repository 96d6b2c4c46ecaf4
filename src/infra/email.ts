/** The key under which an email address is unique and throttled: trimmed, lower case. */
export function normaliseEmail (email: string): string {
  return email.trim().toLowerCase()
}

/** What an email address must look like (the same rule as the JSON schemas' `format: email`, ajv-formats' fast mode). */
export const EMAIL = /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i
