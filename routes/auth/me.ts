import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Admin, AdminChanges, CurrentPassword } from '../../schemas/admins.ts'
import { bearer } from '../../schemas/common.ts'
import { problems } from '../../schemas/problem.ts'
import { adminActorOf } from '../../plugins/auth.ts'

/** GET, PATCH (and the legacy PUT), DELETE /auth/me: the admin's own account. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/me', {
    config: { permission: 'self', beforeMfa: true },
    schema: { summary: 'Your account', security: bearer, response: { 200: Admin, ...problems(429) } }
  }, async (request) => await app.admins.me(adminActorOf(request)))

  const update = {
    summary: 'Change your name, email or password',
    description: 'A name changes at once. A new email (pendingEmail) takes effect once confirmed through the link sent to it; a new password ends your other sessions. Both need currentPassword, whose wrong guesses count towards the login lockout, and a login within the last 5 minutes (else 401 ROSTER_REAUTHENTICATION_REQUIRED).',
    security: bearer,
    body: AdminChanges,
    response: { 200: Admin, ...problems(403, 409, 429) }
  }
  const self = { permission: 'self' as const }
  app.patch('/me', { config: self, schema: update }, async (request) => await app.admins.updateMe(adminActorOf(request), request.body))
  app.put('/me', {
    config: self,
    schema: { ...update, tags: ['auth', 'compatibility'], summary: 'Legacy: the same as PATCH /auth/me', deprecated: true }
  }, async (request) => await app.admins.updateMe(adminActorOf(request), request.body))

  app.delete('/me', {
    config: self,
    schema: {
      summary: 'Delete your account',
      description: 'Deletes the admin for real and ends its sessions; users it created stay, with createdBy null. Needs a login within the last 5 minutes (else 401 ROSTER_REAUTHENTICATION_REQUIRED); the last owner cannot leave (409).',
      security: bearer,
      body: CurrentPassword,
      response: { 204: Type.Null({ description: 'The account is deleted' }), ...problems(409, 429) }
    }
  }, async (request, reply) => {
    await app.admins.deleteMe(adminActorOf(request), request.body.currentPassword)
    return await reply.code(204).send(null)
  })
}
export default plugin
