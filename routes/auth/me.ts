import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { RouteHandlerMethod } from 'fastify'
import { problems } from '../../schemas/problem.ts'
import { Admin, bearer, Email, GivenPassword, Name, NewPassword } from '../../schemas/auth.ts'

const Changes = Type.Object({
  name: Type.Optional(Name),
  email: Type.Optional(Type.Unsafe<string>({ ...Email, description: 'A new address: it takes effect once confirmed through the link emailed to it (pendingEmail until then). Needs currentPassword.' })),
  password: Type.Optional(Type.Unsafe<string>({ ...NewPassword, description: 'A new password; ends your other sessions. Needs currentPassword.' })),
  currentPassword: Type.Optional(Type.Unsafe<string>({ ...GivenPassword, description: 'Your password now: required to change email or password.' }))
}, { additionalProperties: false })

/** GET, PATCH (and the legacy PUT), DELETE /auth/me: the admin's own account. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const rateLimit = app.authRateLimit

  app.get('/me', {
    config: { rateLimit },
    schema: { tags: ['auth'], summary: 'Your account', security: bearer, response: { 200: Admin, ...problems(429) } }
  }, async (request) => await app.accounts.me({ ...request.admin, requestId: request.id }))

  const update = {
    tags: ['auth'],
    summary: 'Change your name, email or password',
    description: 'A name changes at once. A new email (pendingEmail) takes effect once confirmed through the link sent to it; a new password ends your other sessions. Both need currentPassword, whose wrong guesses count towards the login lockout.',
    security: bearer,
    body: Changes,
    response: { 200: Admin, ...problems(403, 409, 429) }
  }
  const handler: RouteHandlerMethod = async function (request) {
    return await app.accounts.updateMe({ ...request.admin, requestId: request.id }, request.body as Record<string, string | undefined>)
  }
  app.patch('/me', { config: { rateLimit }, schema: update }, handler)
  app.put('/me', {
    config: { rateLimit },
    schema: { ...update, tags: ['auth', 'compatibility'], summary: 'Legacy: the same as PATCH /auth/me', deprecated: true }
  }, handler)

  app.delete('/me', {
    config: { rateLimit },
    schema: {
      tags: ['auth'],
      summary: 'Delete your account',
      description: 'Deletes the admin for real and ends its sessions; users it created stay, with createdBy null.',
      security: bearer,
      body: Type.Object({ currentPassword: GivenPassword }, { additionalProperties: false }),
      response: { 204: Type.Null({ description: 'The account is deleted' }), ...problems(429) }
    }
  }, async (request, reply) => {
    await app.accounts.deleteMe({ ...request.admin, requestId: request.id }, request.body.currentPassword)
    return await reply.code(204).send(null)
  })
}
export default plugin
