import createError from '@fastify/error'

/** RFC 7644 §3.12 scimType values Roster answers. */
export type ScimType = 'invalidFilter' | 'invalidSyntax' | 'invalidPath' | 'invalidValue' | 'mutability' | 'uniqueness' | 'noTarget' | 'tooMany' | 'invalidVers'

const Bad = createError('ROSTER_SCIM_BAD_REQUEST', '%s', 400)

/** A 400 with its SCIM `scimType`; the /scim error handler (routes/scim/v2/autohooks.ts) answers it as a SCIM error. */
export function scimError (scimType: ScimType, detail: string): Error & { scimType: ScimType } {
  return Object.assign(new Bad(detail), { scimType })
}

export const SCIM_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error'

/** RFC 7644 §3.12: the body of a SCIM error. */
export function scimErrorBody (status: number, detail: string, scimType?: string): { schemas: string[], status: string, scimType?: string, detail: string } {
  return { schemas: [SCIM_ERROR], status: String(status), ...(scimType === undefined ? {} : { scimType }), detail }
}

/** Whether a request path is under /scim/v2, where errors are SCIM errors (also those met before routing). */
export const isScimPath = (url: string): boolean => url.startsWith('/scim/v2/') || url === '/scim/v2'
