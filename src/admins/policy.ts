import { EMAIL_MAX, NAME_PATTERN, PASSWORD_MAX, PASSWORD_MIN } from '../../schemas/admins.ts'
import { csv } from '../config.ts'
import { isEmail, normaliseEmail } from '../infra/email.ts'
import { normalisePassword } from '../infra/passwords.ts'
import { loadCommonPasswords, type CompactStringSet } from './common-passwords.ts'

/** What a password is checked against besides the list: the account's email addresses and names (current and new). */
export interface PasswordContext {
  emails?: Array<string | undefined>
  names?: Array<string | undefined>
}

let list: CompactStringSet | undefined

/** The common-password list, lower case; read once per process (immutable data, shared by every app built in it). */
function commonPasswords (): CompactStringSet {
  list ??= loadCommonPasswords()
  return list
}

/** Why a password is refused, or null when it is acceptable. */
export type PasswordPolicy = (password: string, account?: PasswordContext) => string | null

/**
 * The password policy: 12–128 characters, no composition rules, not in the
 * common-password list, not the account's email (nor its local part) or name,
 * case-insensitively. The list is zxcvbn-ts's `passwords-common` dictionary
 * (@zxcvbn-ts/language-common, about 49,000 passwords), loaded once in a
 * compact form (./common-passwords.ts).
 */
export async function loadPasswordPolicy (): Promise<PasswordPolicy> {
  const common = commonPasswords()
  return (password, account = {}) => {
    const length = [...password].length
    if (length < PASSWORD_MIN) return `must be at least ${PASSWORD_MIN} characters long`
    if (length > PASSWORD_MAX) return `must be at most ${PASSWORD_MAX} characters long`
    const lower = normalisePassword(password).toLowerCase()
    if (common.has(lower)) return 'is too common: it appears in a list of frequently used passwords'
    for (const email of account.emails ?? []) {
      if (email === undefined) continue
      const e = normaliseEmail(email)
      if (lower === e || lower === e.split('@')[0]) return 'must not be the email address'
    }
    for (const name of account.names ?? []) {
      if (name !== undefined && lower === name.toLowerCase()) return 'must not be the name'
    }
    return null
  }
}

/** Why an email address cannot be an admin's, or null. */
export function emailProblem (email: string): string | null {
  if (email.length > EMAIL_MAX) return `must be at most ${EMAIL_MAX} characters long`
  if (!isEmail(email)) return 'must be a valid email address'
  return null
}

export function nameProblem (name: string): string | null {
  return new RegExp(NAME_PATTERN).test(name) ? null : 'must be 3 to 32 letters, digits, ".", "_" or "-"'
}

/** ADMIN_EMAIL_DOMAINS as a checker: true when the address may be an admin's (empty list = any). */
export function emailDomainAllowed (allowlist: string): (email: string) => boolean {
  const domains = new Set(csv(allowlist).map((d) => d.toLowerCase().replace(/^@/, '')))
  return (email) => domains.size === 0 || domains.has(normaliseEmail(email).split('@').pop() as string)
}
