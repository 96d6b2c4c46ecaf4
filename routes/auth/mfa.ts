import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { bearer } from '../../schemas/common.ts'
import { CodeOnly, RecoveryCodes, SecondFactor, TotpEnrolment } from '../../schemas/mfa.ts'
import { problems } from '../../schemas/problem.ts'
import { adminActorOf } from '../../plugins/auth.ts'

/** /auth/mfa/totp: two-factor login with an authenticator app (TOTP, RFC 6238), for your own account. */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  // Enrolment is what an admin without MFA may still do when MFA_REQUIRED=true.
  const enrol = { permission: 'self' as const, beforeMfa: true }

  app.post('/mfa/totp', {
    config: enrol,
    schema: {
      summary: 'Start TOTP enrolment',
      description: 'A new secret (and its otpauth:// URI for a QR code) for your authenticator app: not active until POST /auth/mfa/totp/verify confirms a code. Starting again replaces a pending secret. 409 when TOTP is already active.',
      security: bearer,
      response: { 201: TotpEnrolment, ...problems(409, 429) }
    }
  }, async (request, reply) => await reply.code(201).send(await app.mfa.start(adminActorOf(request))))

  app.post('/mfa/totp/verify', {
    config: enrol,
    schema: {
      summary: 'Activate TOTP with a first code',
      description: 'From then on a login asks for a code after the password. Answers ten single-use recovery codes, shown this once.',
      security: bearer,
      body: CodeOnly,
      response: { 200: RecoveryCodes, ...problems(409, 429) }
    }
  }, async (request) => await app.mfa.verify(adminActorOf(request), request.body.code))

  app.delete('/mfa/totp', {
    config: { permission: 'self' },
    schema: {
      summary: 'Disable TOTP',
      description: 'Needs a current code or a recovery code (a wrong one counts towards the login lockout) and a login within the last 5 minutes (else 401 ROSTER_REAUTHENTICATION_REQUIRED).',
      security: bearer,
      body: SecondFactor,
      response: { 204: Type.Null({ description: 'Two-factor login is off' }), ...problems(409, 429) }
    }
  }, async (request, reply) => {
    await app.mfa.disable(adminActorOf(request), request.body)
    return await reply.code(204).send(null)
  })
}
export default plugin
