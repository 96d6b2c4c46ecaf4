/**
 * Every permission of every route, read from the OpenAPI document: each
 * operation is called by each role and by API clients with and without the
 * scope it needs; those the permission table leaves out get 403
 * ROSTER_FORBIDDEN naming the permission, the others get past the check.
 */
import t from 'tap'
import { build, createAdmin, loginAs, type TestAdmin } from '../helper.ts'
import { clientToken, createClient } from './helpers.ts'
import { ROLE_PERMISSIONS } from '../../src/admins/permissions.ts'
import { ROLES, SCOPES } from '../../schemas/admins.ts'

interface Operation { 'x-permission'?: string, description?: string, security?: unknown, parameters?: Array<{ in: string, name: string, required?: boolean }> }

t.test('each operation × each role and API client: 403 exactly where the permission table says', async (t) => {
  const app = await build(t, { env: { AUTH_RATE_LIMIT: '100000000', LOCKOUT_THRESHOLD: '1000' } })
  const admins = Object.fromEntries(await Promise.all(ROLES.map(async (role) => [role, await createAdmin(app, { role })] as const))) as Record<typeof ROLES[number], TestAdmin>
  const owner = await loginAs(app, admins.owner)
  // One client per scope: each is "with the scope" for its own and "without" for the others.
  const clients = await Promise.all(SCOPES.map(async (scope) => ({ scope, headers: await clientToken(app, await createClient(app, owner, [scope], `only ${scope}`)) })))

  const doc = (await app.inject({ url: '/apidocs/json' })).json<{ paths: Record<string, Record<string, Operation>> }>()
  const operations = Object.entries(doc.paths).filter(([path]) => !path.startsWith('/apidocs'))
    .flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method: method.toUpperCase(), op })))
  t.ok(operations.length >= 45, `${operations.length} operations`)

  let checks = 0
  const url = (path: string): string => path.replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-00000000000a') + (path.includes('/accept') || path.includes('confirm') || path.endsWith('/reset') ? '?token=x' : '')
  for (const { path, method, op } of operations) {
    const name = `${method} ${path}`
    const access = op['x-permission']
    t.ok(access !== undefined, `${name} declares its access in OpenAPI (x-permission)`)
    t.equal(op.description?.match(/Access: /g)?.length, 1, `${name}: its description says who may call it, once`)
    if (access === 'public') {
      t.equal(op.security, undefined, `${name} is public: no bearer`)
      continue
    }
    const callers: Array<{ who: string, headers: () => Promise<{ authorization: string }>, allowed: boolean }> = [
      ...ROLES.map((role) => ({
        who: `role ${role}`,
        // A fresh login for each call: a logout or a deletion must not spoil the next one, and step-up needs a recent login.
        headers: async () => (await loginAs(app, admins[role])).headers as { authorization: string },
        allowed: access === 'self' || (ROLE_PERMISSIONS[role] as readonly string[]).includes(access as string)
      })),
      ...clients.map((c) => ({ who: `client with scope ${c.scope}`, headers: async () => c.headers, allowed: access === c.scope }))
    ]
    for (const caller of callers) {
      const res = await app.inject({ method: method as 'GET', url: url(path), headers: await caller.headers() })
      checks++
      if (caller.allowed) {
        t.ok(![401, 403].includes(res.statusCode) && res.statusCode < 500, `${name} by ${caller.who}: allowed (${res.statusCode} ${res.statusCode >= 400 ? res.body.slice(0, 120) : ''})`)
        if (method === 'GET' && op.parameters?.some((p) => p.required === true) !== true) t.equal(res.statusCode, 200, `${name} by ${caller.who}: 200`)
      } else {
        t.equal(res.statusCode, 403, `${name} by ${caller.who}: 403`)
        const detail = access === 'self' ? /for admins/ : new RegExp(`permission ${access}`)
        // Under /scim/v2 errors are SCIM errors (RFC 7644 §3.12), elsewhere problem+json.
        if (path.startsWith('/scim/')) t.match(res.json(), { schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '403', detail }, `${name} by ${caller.who}: the SCIM error names the permission`)
        else t.match(res.json(), { code: 'ROSTER_FORBIDDEN', detail }, `${name} by ${caller.who}: the problem names the permission`)
      }
    }
  }
  t.comment(`${checks} permission checks over ${operations.length} operations`)
  t.ok(checks >= 150, `${checks} permission checks`)
})

t.test('a route that declares no access stops the app from starting', async (t) => {
  await t.rejects(build(t, { extend (app) { app.get('/test/undeclared', async () => ({})) } }), /routes without a declared access .*GET \/test\/undeclared/)
  await t.rejects(build(t, { extend (app) { app.get('/test/unknown', { config: { permission: 'users:fly' as 'users:read' } }, async () => ({})) } }), /GET \/test\/unknown/)
})
