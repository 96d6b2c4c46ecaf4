import createError from '@fastify/error'

/** Errors of the groups resource; the single error handler (src/infra/problem.ts) answers them as problem+json, SCIM's as SCIM errors. */
export const groupsErrors = {
  DisplayNameTaken: createError('ROSTER_GROUP_NAME_TAKEN', 'displayName: another group already has this name', 409),
  ExternalIdTaken: createError('ROSTER_GROUP_EXTERNAL_ID_TAKEN', 'externalId: another group already has this externalId', 409),
  /** A membership names a user that does not exist. */
  NoSuchMember: createError('ROSTER_NO_SUCH_MEMBER', '%s', 404)
}
