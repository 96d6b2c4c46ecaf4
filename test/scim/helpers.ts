import type { LightMyRequestResponse } from 'fastify'
import { build, createAdmin, loginAs, type TestApp, type TestContext, type TestSession } from '../helper.ts'
import { clientToken, createClient } from '../access/helpers.ts'

export const SCIM = 'application/scim+json'
export const USER = 'urn:ietf:params:scim:schemas:core:2.0:User'
export const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group'
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp'
export const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error'

export interface ScimFixture {
  app: TestApp
  owner: TestSession
  /** The API client's id (the audit actor of SCIM changes). */
  clientId: string
  /** A SCIM request as an identity provider sends it: bearer token of a client with scope scim, application/scim+json. */
  scim: (method: string, url: string, body?: unknown, headers?: Record<string, string>) => Promise<LightMyRequestResponse>
}

export async function scimFixture (t: TestContext, env: Record<string, string> = {}): Promise<ScimFixture> {
  // Not a test of load shedding: a busy shared machine must not shed these requests.
  const app = await build(t, { env: { PRESSURE_MAX_EVENT_LOOP_DELAY: '0', ...env } })
  const owner = await loginAs(app, await createAdmin(app, { role: 'owner' }))
  const client = await createClient(app, owner, ['scim'], 'identity provider')
  const auth = await clientToken(app, client)
  return {
    app,
    owner,
    clientId: client.id,
    scim: async (method, url, body, headers = {}) => await app.inject({
      method: method as 'GET',
      url: `/scim/v2${url}`,
      headers: { ...auth, ...(body === undefined ? {} : { 'content-type': `${SCIM}; charset=utf-8` }), ...headers },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) })
    })
  }
}

/** A SCIM error body, checked to be one (RFC 7644 §3.12). */
export function scimError (res: LightMyRequestResponse): { status: string, scimType?: string, detail: string } {
  if (!String(res.headers['content-type']).startsWith(SCIM)) throw new Error(`not a SCIM answer: ${res.statusCode} ${String(res.headers['content-type'])} ${res.body}`)
  const body = res.json<{ schemas: string[], status: string, scimType?: string, detail: string }>()
  if (body.schemas[0] !== ERROR || body.status !== String(res.statusCode)) throw new Error(`not a SCIM error: ${res.statusCode} ${res.body}`)
  return body
}
