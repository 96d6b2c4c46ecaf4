import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problems } from '../../schemas/problem.ts'
import { Accepted, Admin, Confirmed, Email, Html, Name, NewPassword, OpaqueToken, problemOrHtml } from '../../schemas/auth.ts'
import { confirmedPage, errorPage, sendHtml, wantsHtml } from '../../src/auth/pages.ts'

/** POST /auth/register, GET /auth/confirm (the emailed link), POST /auth/confirm/resend. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const rateLimit = app.authRateLimit

  app.post('/register', {
    config: { public: true, rateLimit },
    schema: {
      tags: ['auth'],
      summary: 'Register an admin account',
      description: 'Creates an unconfirmed account and emails a confirmation link (valid 24 h). Needs REGISTRATION=open; ADMIN_EMAIL_DOMAINS may limit the addresses. The password must not be a common one, nor the email or the name.',
      body: Type.Object({ email: Email, name: Name, password: NewPassword }, { additionalProperties: false }),
      response: { 201: Admin, ...problems(403, 409, 429) }
    }
  }, async (request, reply) => {
    const admin = await app.accounts.register(request.body, request.id)
    return await reply.code(201).send(admin)
  })

  app.get('/confirm', {
    config: { public: true, rateLimit },
    schema: {
      tags: ['auth'],
      summary: 'Confirm an account or a new email address (the emailed link)',
      description: 'Answers an HTML page to a browser (Accept: text/html) and JSON otherwise. A link is single use; an expired, used or unknown one is 400.',
      querystring: Type.Object({ token: OpaqueToken }, { additionalProperties: false }),
      response: {
        200: { description: 'Confirmed', content: { 'application/json': { schema: Confirmed }, 'text/html': { schema: Html } } },
        ...problems(429),
        ...problemOrHtml(400, 409)
      }
    }
  }, async (request, reply) => {
    const html = wantsHtml(request)
    try {
      const done = await app.accounts.confirm(request.query.token, request.id)
      if (html) return sendHtml(reply, 200, confirmedPage(done.purpose, done.email))
      return { status: 'confirmed' as const, ...done }
    } catch (err) {
      const e = err as { statusCode?: number, message: string }
      if (html && (e.statusCode === 400 || e.statusCode === 409)) return sendHtml(reply, e.statusCode, errorPage('This link cannot be used', e.message))
      throw err
    }
  })

  app.post('/confirm/resend', {
    config: { public: true, rateLimit },
    schema: {
      tags: ['auth'],
      summary: 'Send the confirmation email again',
      description: 'Always 202, whether or not an unconfirmed account has this address (no account enumeration); at most 5 such emails per account per hour.',
      body: Type.Object({ email: Email }, { additionalProperties: false }),
      response: { 202: Accepted, ...problems(429) }
    }
  }, async (request, reply) => {
    app.accounts.resendConfirmation(request.body.email)
    return await reply.code(202).send({ status: 'accepted' as const, detail: 'If an unconfirmed account has this address, a new confirmation link is on its way.' })
  })
}
export default plugin
