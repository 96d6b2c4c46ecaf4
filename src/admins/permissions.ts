import { PERMISSIONS, ROLES, SCOPES, type Permission, type Role, type Scope } from '../../schemas/admins.ts'

/**
 * THE access model in one place: what each role may do. Routes declare the
 * permission they need (route config `permission`), plugins/auth.ts's hook
 * checks it against the caller's role, or an API client's scopes (scopes are
 * permissions: SCOPES).
 */
export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  // Everything but `scim`: identity providers provision through an API client, admins through /users and /groups.
  owner: PERMISSIONS.filter((p) => p !== 'scim'),
  admin: ['users:read', 'users:write', 'audit:read', 'admins:read'],
  viewer: ['users:read']
}

/**
 * What a route needs: a permission, `self` (any authenticated admin, on its own
 * account, sessions and MFA; never an API client) or `public` (no token).
 */
export type Access = Permission | 'self' | 'public'

/** Who calls: an admin (through a session) or an API client (client credentials). */
export type Principal =
  | { kind: 'admin', id: string, sessionId: string, role: Role, mfa: boolean, authTime: number | null }
  | { kind: 'client', id: string, scopes: readonly Scope[] }

export function isPermission (value: unknown): value is Permission {
  return (PERMISSIONS as readonly unknown[]).includes(value)
}

/** Whether a principal may use a route that needs `access` (`public` never reaches this). */
export function allows (principal: Principal, access: Exclude<Access, 'public'>): boolean {
  if (principal.kind === 'client') return access !== 'self' && (principal.scopes as readonly string[]).includes(access)
  return access === 'self' || ROLE_PERMISSIONS[principal.role].includes(access)
}

/** The roles that hold a permission, most powerful first. */
export function rolesWith (permission: Permission): Role[] {
  return ROLES.filter((role) => ROLE_PERMISSIONS[role].includes(permission))
}

/** The sentence the OpenAPI description of a route gets about who may call it. */
export function describeAccess (access: Access): string {
  if (access === 'public') return 'Access: public (no token).'
  if (access === 'self') return 'Access: any authenticated admin, on their own account (`self`); not API clients.'
  const scope = (SCOPES as readonly string[]).includes(access) ? `an API client with scope \`${access}\`` : ''
  const roles = rolesWith(access)
  if (roles.length === 0) return `Access: ${scope} only.`
  return `Access: permission \`${access}\` (roles ${roles.map((r) => `\`${r}\``).join(', ')}${scope === '' ? '' : `, or ${scope}`}).`
}
