import fp from 'fastify-plugin'
import { createMfaService, type MfaService } from '../src/mfa/service.ts'
import { createSecretBox } from '../src/infra/secret-box.ts'
import { TOTP_SECRET_PURPOSE } from '../src/infra/totp.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Two-factor login: TOTP enrolment and disabling (src/mfa/service.ts). */
    mfa: MfaService
  }
}

/** Expired mfa_tokens' jti are deleted by the pruning job (src/retention/). */
export default fp(async (app) => {
  const mfa = createMfaService({ db: app.db, audit: app.audit, webhooks: app.webhooks, sessions: app.sessions, box: createSecretBox(app.secretKey, TOTP_SECRET_PURPOSE), issuer: 'Roster' })
  app.decorate('mfa', mfa)
}, { name: 'mfa', dependencies: ['db', 'secret-key', 'audit', 'sessions', 'webhooks'] })
