import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Admin, Html, problemOrHtml, TokenQuery } from '../../schemas/admins.ts'
import { bearer } from '../../schemas/common.ts'
import { Invitation, InvitationAcceptance, InvitationId, INVITATIONS_LISTED, NewInvitation } from '../../schemas/invitations.ts'
import { problems } from '../../schemas/problem.ts'
import { isLinkError } from '../../src/admins/errors.ts'
import { acceptedPage, errorPage, invitationFormPage } from '../../src/admins/pages.ts'
import { FORM } from '../../src/infra/body.ts'
import { invalidFieldMessage } from '../../src/infra/errors.ts'
import { sendHtml, wantsHtml } from '../../src/infra/html.ts'
import { actorOf } from '../../plugins/auth.ts'

/**
 * /auth/invitations: owners invite admins by email; the emailed link opens
 * GET /auth/invitations/accept, a form (no script) that posts urlencoded to
 * POST /auth/invitations/accept, which also takes JSON.
 */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const manage = { permission: 'invitations:manage' as const }

  app.post('/invitations', {
    config: manage,
    schema: {
      summary: 'Invite an admin by email',
      description: 'Emails a single-use link, valid 72 h, to become a confirmed admin with the role given. A new invitation to the same address revokes the earlier one. 409 when an admin has the address already; 403 with REGISTRATION=closed or an address outside ADMIN_EMAIL_DOMAINS.',
      security: bearer,
      body: NewInvitation,
      response: { 201: Invitation, ...problems(403, 409, 429) }
    }
  }, async (request, reply) => await reply.code(201).send(await app.invitations.invite(actorOf(request), request.body)))

  app.get('/invitations', {
    config: manage,
    schema: {
      summary: 'List pending invitations',
      description: `Not yet accepted, revoked or expired; newest first (at most ${INVITATIONS_LISTED}).`,
      security: bearer,
      response: { 200: Type.Array(Invitation), ...problems(429) }
    }
  }, async () => await app.invitations.list())

  app.delete('/invitations/:id', {
    config: manage,
    schema: {
      summary: 'Revoke a pending invitation',
      description: 'Its link stops working at once. 404 when it is not pending (accepted, revoked, expired or unknown).',
      security: bearer,
      params: InvitationId,
      response: { 204: Type.Null({ description: 'Revoked' }), ...problems(404, 429) }
    }
  }, async (request, reply) => {
    await app.invitations.revoke(actorOf(request), request.params.id)
    return await reply.code(204).send(null)
  })

  app.get('/invitations/accept', {
    config: { public: true },
    schema: {
      summary: 'The invitation link\'s page: a form for your name and password',
      description: 'An HTML page without script that posts the token, a name and a password to POST /auth/invitations/accept. Whether the link is still valid shows when the form is sent.',
      querystring: TokenQuery,
      response: { 200: { description: 'The form', content: { 'text/html': { schema: Html } } }, ...problems(429) }
    }
  }, async (request, reply) => sendHtml(reply, 200, invitationFormPage(request.query.token)))

  app.post('/invitations/accept', {
    // The invitation page's form posts urlencoded (plugins/body.ts; it also lists the type in `consumes`).
    config: { public: true, formBody: true },
    attachValidation: true,
    schema: {
      summary: 'Accept an invitation: become an admin',
      description: 'Creates a confirmed admin with the invitation\'s role and the name and password given; the link is used up. A refused name or password leaves it usable. JSON answers 201; the page\'s form (urlencoded, or Accept: text/html) gets an HTML page. 403 with REGISTRATION=closed.',
      body: InvitationAcceptance,
      response: {
        200: { description: 'Admin created (HTML form)', content: { 'text/html': { schema: Html } } },
        201: Admin,
        ...problems(429),
        ...problemOrHtml(400, 403, 409)
      }
    }
  }, async (request, reply) => {
    const html = request.headers['content-type']?.startsWith(FORM) === true || wantsHtml(request)
    const body = request.body as { token?: unknown } | undefined
    const token = typeof body?.token === 'string' && body.token !== '' && body.token.length <= 256 ? body.token : undefined
    if (request.validationError !== undefined) {
      if (!html) throw request.validationError
      if (token !== undefined) return sendHtml(reply, 400, invitationFormPage(token, request.validationError.message.replace(/^body\//, '')))
      return sendHtml(reply, 400, errorPage('This link cannot be used', 'The form was incomplete: open the link from the email again.'))
    }
    try {
      const admin = await app.invitations.accept(request.body, request.id)
      if (html) return sendHtml(reply, 200, acceptedPage(admin.email, admin.role))
      return await reply.code(201).send(admin)
    } catch (err) {
      const refused = invalidFieldMessage(err)
      if (html && refused !== undefined) return sendHtml(reply, 400, invitationFormPage(token as string, `password ${refused}`))
      if (html && isLinkError(err)) return sendHtml(reply, err.statusCode as number, token !== undefined && err.statusCode === 409 ? invitationFormPage(token, err.message) : errorPage('This link cannot be used', err.message))
      throw err
    }
  })
}
export default plugin
