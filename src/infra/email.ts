/** The key under which an email address is unique and throttled: trimmed, lower case. */
export function normaliseEmail (email: string): string {
  return email.trim().toLowerCase()
}
