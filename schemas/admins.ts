import { Type, type Static } from '@sinclair/typebox'
import { Timestamp, Uuid } from './common.ts'
import { pageQuery } from './paging.ts'
import { Problem, statusTitle } from './problem.ts'

/** Admin accounts: the policy's bounds, and the shapes of /auth's account routes. */

/** Admin name: 3–32 ASCII letters, digits, `.`, `_`, `-` (ASCII only, so no look-alike letters from other scripts). */
export const NAME_PATTERN = '^[A-Za-z0-9._-]{3,32}$'
export const EMAIL_MAX = 254
export const PASSWORD_MIN = 12
export const PASSWORD_MAX = 128

/** Roles, most powerful first; what each may do is src/admins/permissions.ts's table. */
export const ROLES = ['owner', 'admin', 'viewer'] as const
export type Role = typeof ROLES[number]

/**
 * Every permission a route may declare (route config `permission`), besides
 * `self` (any authenticated admin: its own account, sessions, MFA).
 */
export const PERMISSIONS = ['users:read', 'users:write', 'audit:read', 'admins:read', 'admins:write', 'invitations:manage', 'clients:manage', 'webhooks:manage', 'scim'] as const
export type Permission = typeof PERMISSIONS[number]

/**
 * What an API client may be granted: scopes are permissions, checked by the same hook as roles.
 * `scim` (SCIM 2.0 provisioning under /scim/v2, users and groups) is held by API clients only, never by a role.
 */
export const SCOPES = ['users:read', 'users:write', 'audit:read', 'scim'] as const satisfies readonly Permission[]
export type Scope = typeof SCOPES[number]

export const RoleName = Type.Unsafe<Role>({ type: 'string', enum: [...ROLES], description: '`owner` (everything: admins, roles, invitations, API clients), `admin` (users, audit log, the list of admins) or `viewer` (reads users).' })

export const Email = Type.String({ format: 'email', maxLength: EMAIL_MAX, description: 'Email address (unique case-insensitively).', examples: ['ann@example.com'] })
export const Name = Type.String({ pattern: NAME_PATTERN, minLength: 3, maxLength: 32, description: '3–32 ASCII letters, digits, `.`, `_` or `-` (unique case-insensitively).', examples: ['ann'] })
export const NewPassword = Type.String({ minLength: PASSWORD_MIN, maxLength: PASSWORD_MAX, description: `${PASSWORD_MIN}–${PASSWORD_MAX} characters, any characters; not a common password, not the email or name.` })
/** A password to check (login, currentPassword): no policy, only bounded. */
export const GivenPassword = Type.String({ minLength: 1, maxLength: PASSWORD_MAX, description: 'The account\'s password.' })
/** Opaque single-use tokens (refresh, emailed links): 43 base64url characters when genuine. */
export const OpaqueToken = Type.String({ minLength: 1, maxLength: 256 })

export const Admin = Type.Object({
  id: Uuid,
  email: Type.String({ description: 'The address in force (a new one waits in pendingEmail until confirmed).' }),
  name: Type.String(),
  confirmed: Type.Boolean({ description: 'Whether the account\'s email was confirmed.' }),
  pendingEmail: Type.Union([Type.String(), Type.Null()], { description: 'A new address waiting for its confirmation link, or null.' }),
  role: RoleName,
  mfa: Type.Boolean({ description: 'Whether two-factor login (TOTP) is active.' }),
  createdAt: Timestamp(),
  updatedAt: Timestamp()
}, { additionalProperties: false, description: 'An admin account (never its password hash).' })
export type AdminView = Static<typeof Admin>

/** What anyone with a token may see of an admin: never a password hash (the old service leaked passwords here). */
export const AdminSummary = Type.Object({
  id: Uuid,
  email: Type.String({ format: 'email' }),
  name: Type.String(),
  confirmed: Type.Boolean({ description: 'Whether the admin confirmed the account through the emailed link.' }),
  role: RoleName,
  createdAt: Timestamp()
}, { additionalProperties: false })
export type AdminSummaryView = Static<typeof AdminSummary>

/** GET /auth/admins sorts; each has its `(key, id)` index (db/schema/admins.ts). */
export const ADMIN_SORTS = ['createdAt', 'email', 'name'] as const
export const AdminListQuery = Type.Object(pageQuery(ADMIN_SORTS, 'createdAt'), { additionalProperties: false })

export const Registration = Type.Object({ email: Email, name: Name, password: NewPassword }, { additionalProperties: false })
export type RegistrationBody = Static<typeof Registration>

export const EmailOnly = Type.Object({ email: Email }, { additionalProperties: false })
export const TokenQuery = Type.Object({ token: OpaqueToken }, { additionalProperties: false })

export const AdminChanges = Type.Object({
  name: Type.Optional(Name),
  email: Type.Optional(Type.Unsafe<string>({ ...Email, description: 'A new address: it takes effect once confirmed through the link emailed to it (pendingEmail until then). Needs currentPassword.' })),
  password: Type.Optional(Type.Unsafe<string>({ ...NewPassword, description: 'A new password; ends your other sessions. Needs currentPassword.' })),
  currentPassword: Type.Optional(Type.Unsafe<string>({ ...GivenPassword, description: 'Your password now: required to change email or password.' }))
}, { additionalProperties: false })
export type AdminChangesBody = Static<typeof AdminChanges>

export const AdminId = Type.Object({ id: Uuid }, { additionalProperties: false })
export const RoleChange = Type.Object({ role: RoleName }, { additionalProperties: false })
export type RoleChangeBody = Static<typeof RoleChange>

export const CurrentPassword = Type.Object({ currentPassword: GivenPassword }, { additionalProperties: false })
export const PasswordReset = Type.Object({ token: OpaqueToken, password: NewPassword }, { additionalProperties: false })

export const Accepted = Type.Object({
  status: Type.Literal('accepted'),
  detail: Type.String()
}, { additionalProperties: false })

export const Confirmed = Type.Object({
  status: Type.Literal('confirmed'),
  purpose: Type.Union([Type.Literal('account'), Type.Literal('email')], { description: 'account: the account is confirmed; email: the new address is now the account\'s.' }),
  email: Type.String()
}, { additionalProperties: false })
export type Confirmation = Omit<Static<typeof Confirmed>, 'status'>

/** An HTML page (the emailed links open these in a browser). */
export const Html = Type.String({ description: 'An HTML page.' })

/** An error answered as problem+json to API clients and as an HTML page to browsers. */
export function problemOrHtml (...statuses: number[]): Record<number, unknown> {
  const out: Record<number, unknown> = {}
  for (const status of statuses) {
    out[status] = { description: statusTitle(status), content: { 'application/problem+json': { schema: Type.Ref(Problem) }, 'text/html': { schema: Html } } }
  }
  return out
}
