import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Admin, Confirmed, Html, problemOrHtml, Registration, TokenQuery } from '../../schemas/admins.ts'
import { problems } from '../../schemas/problem.ts'
import { isLinkError } from '../../src/admins/errors.ts'
import { confirmedPage, errorPage } from '../../src/admins/pages.ts'
import { sendHtml, wantsHtml } from '../../src/infra/html.ts'
import { acceptEmail } from './_accepted.ts'

/** POST /auth/register, GET /auth/confirm (the emailed link), POST /auth/confirm/resend. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/register', {
    config: { public: true },
    schema: {
      summary: 'Register an admin account',
      description: 'Creates an unconfirmed account and emails a confirmation link (valid 24 h). Needs REGISTRATION=open or domain; ADMIN_EMAIL_DOMAINS may limit the addresses. The password must not be a common one, nor the email or the name. An email that already has an account gets the same answer (201, an id of no account) and its owner an email instead: registration tells no one which addresses have accounts. A taken name is a 409 (names are public handles).',
      body: Registration,
      response: { 201: Admin, ...problems(403, 409, 429) }
    }
  }, async (request, reply) => {
    const admin = await app.admins.register(request.body, request.id)
    return await reply.code(201).send(admin)
  })

  app.get('/confirm', {
    config: { public: true },
    // Opening the link uses it up: HEAD (a link checker) must not, so it is a 405.
    exposeHeadRoute: false,
    schema: {
      summary: 'Confirm an account or a new email address (the emailed link)',
      description: 'Answers an HTML page to a browser (Accept: text/html) and JSON otherwise. A link is single use; an expired, used or unknown one is 400.',
      querystring: TokenQuery,
      response: {
        200: { description: 'Confirmed', content: { 'application/json': { schema: Confirmed }, 'text/html': { schema: Html } } },
        ...problems(429),
        ...problemOrHtml(400, 409)
      }
    }
  }, async (request, reply) => {
    const html = wantsHtml(request)
    try {
      const done = await app.admins.confirm(request.query.token, request.id)
      if (html) return sendHtml(reply, 200, confirmedPage(done.purpose, done.email))
      return { status: 'confirmed' as const, ...done }
    } catch (err) {
      if (html && isLinkError(err)) return sendHtml(reply, err.statusCode as number, errorPage('This link cannot be used', err.message))
      throw err
    }
  })

  acceptEmail(app, '/confirm/resend', {
    summary: 'Send the confirmation email again',
    description: 'Always 202, whether or not an unconfirmed account has this address (no account enumeration); at most 5 such emails per account per hour.'
  }, 'If an unconfirmed account has this address, a new confirmation link is on its way.', (email) => { app.admins.resendConfirmation(email) })
}
export default plugin
