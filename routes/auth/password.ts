import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Html, PasswordReset, problemOrHtml, TokenQuery } from '../../schemas/admins.ts'
import { problems } from '../../schemas/problem.ts'
import { isLinkError } from '../../src/admins/errors.ts'
import { errorPage, resetDonePage, resetFormPage } from '../../src/admins/pages.ts'
import { FORM } from '../../src/infra/body.ts'
import { invalidFieldMessage } from '../../src/infra/errors.ts'
import { sendHtml, wantsHtml } from '../../src/infra/html.ts'
import { acceptEmail } from './_accepted.ts'

/**
 * POST /auth/password/forgot, and the reset link's page: GET /auth/password/reset
 * shows a form (no script) that posts urlencoded to POST /auth/password/reset,
 * which also takes JSON.
 */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  acceptEmail(app, '/password/forgot', {
    summary: 'Ask for a password reset email',
    description: 'Always 202, whether or not an account has this address (no account enumeration). The email links to GET /auth/password/reset?token=…, valid 1 h, single use; at most 5 per account per hour.'
  }, 'If an account has this address, a password reset link is on its way.', (email) => { app.admins.forgotPassword(email) })

  app.get('/password/reset', {
    config: { public: true },
    schema: {
      summary: 'The reset link\'s page: a form for the new password',
      description: 'An HTML page without script that posts the token and the new password to POST /auth/password/reset. Whether the token is still valid shows when the form is sent.',
      querystring: TokenQuery,
      response: { 200: { description: 'The form', content: { 'text/html': { schema: Html } } }, ...problems(429) }
    }
  }, async (request, reply) => sendHtml(reply, 200, resetFormPage(request.query.token)))

  app.post('/password/reset', {
    // The reset page's form posts urlencoded (plugins/body.ts; it also lists the type in `consumes`).
    config: { public: true, formBody: true },
    attachValidation: true,
    schema: {
      summary: 'Set a new password with the emailed token',
      description: 'Ends every session of the account. JSON answers 204; the page\'s form (urlencoded, or Accept: text/html) gets an HTML page, and its form again when the password is refused.',
      body: PasswordReset,
      response: {
        200: { description: 'Password changed (HTML form)', content: { 'text/html': { schema: Html } } },
        204: Type.Null({ description: 'Password changed; every session has ended' }),
        ...problems(429),
        ...problemOrHtml(400)
      }
    }
  }, async (request, reply) => {
    const html = request.headers['content-type']?.startsWith(FORM) === true || wantsHtml(request)
    const body = request.body as { token?: unknown, password?: unknown } | undefined
    if (request.validationError !== undefined) {
      if (!html) throw request.validationError
      // A form with a usable token gets the form back with the reason; anything else an error page.
      if (typeof body?.token === 'string' && body.token !== '' && body.token.length <= 256) {
        return sendHtml(reply, 400, resetFormPage(body.token, `The password ${request.validationError.message.replace(/^body\/password /, '')}.`))
      }
      return sendHtml(reply, 400, errorPage('This link cannot be used', 'The form was incomplete: open the link from the email again.'))
    }
    const { token, password } = request.body as { token: string, password: string }
    try {
      await app.admins.resetPassword(token, password, request.id)
    } catch (err) {
      const refused = invalidFieldMessage(err)
      if (html && refused !== undefined) return sendHtml(reply, 400, resetFormPage(token, `The password ${refused}.`))
      if (html && isLinkError(err)) return sendHtml(reply, 400, errorPage('This link cannot be used', err.message))
      throw err
    }
    if (html) return sendHtml(reply, 200, resetDonePage())
    return await reply.code(204).send(null)
  })
}
export default plugin
