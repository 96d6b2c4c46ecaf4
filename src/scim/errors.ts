import createError from '@fastify/error'

/** RFC 7644 §3.12 scimType values Roster answers. */
export type ScimType = 'invalidFilter' | 'invalidSyntax' | 'invalidPath' | 'invalidValue' | 'mutability' | 'uniqueness' | 'noTarget' | 'tooMany' | 'invalidVers'

const Bad = createError('ROSTER_SCIM_BAD_REQUEST', '%s', 400)

/** A 400 with its SCIM `scimType`; the /scim error handler (routes/scim/v2/autohooks.ts) answers it as a SCIM error. */
export function scimError (scimType: ScimType, detail: string): Error & { scimType: ScimType } {
  return Object.assign(new Bad(detail), { scimType })
}
