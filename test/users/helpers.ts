import type { LightMyRequestResponse } from 'fastify'
import { build, createAdmin, loginAs, type TestAdmin, type TestApp, type TestContext, type TestSession } from '../helper.ts'

export interface UsersFixture {
  app: TestApp
  admin: TestAdmin
  session: TestSession
  /** Authorization header (plus any extra headers). */
  auth: (extra?: Record<string, string>) => Record<string, string>
  /** POST /users, expecting 201. */
  createUser: (body: Record<string, unknown>) => Promise<UserJson>
}

export interface UserJson {
  id: string
  email: string
  name: string | null
  active: boolean
  createdAt: string
  updatedAt: string
  createdBy: string | null
}

/** An app, a logged-in admin and helpers for the users tests. */
export async function usersFixture (t: TestContext, env: Record<string, string> = {}): Promise<UsersFixture> {
  const app = await build(t, { env })
  const admin = await createAdmin(app)
  const session = await loginAs(app, admin)
  const auth = (extra: Record<string, string> = {}): Record<string, string> => ({ ...session.headers, ...extra })
  return {
    app,
    admin,
    session,
    auth,
    async createUser (body) {
      const res = await app.inject({ method: 'POST', url: '/users', headers: auth(), payload: body })
      if (res.statusCode !== 201) throw new Error(`POST /users answered ${res.statusCode}: ${res.body}`)
      return res.json() as UserJson
    }
  }
}

/** Rows of a table, for asserting that nothing changed. */
export async function count (app: TestApp, table: string, where = 'true', params: unknown[] = []): Promise<number> {
  const { rows } = await app.pg.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`, params)
  return (rows[0] as { n: number }).n
}

export function problem (res: LightMyRequestResponse): { status: number, code: string, detail: string, errors?: Array<{ path: string, message: string }> } {
  if (!String(res.headers['content-type']).startsWith('application/problem+json')) throw new Error(`not a problem: ${res.statusCode} ${res.body}`)
  return res.json()
}
