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

/** How often the jti of expired mfa_tokens are deleted. */
const PURGE_INTERVAL = 10 * 60 * 1000

export default fp(async (app) => {
  const mfa = createMfaService({ db: app.db, audit: app.audit, webhooks: app.webhooks, sessions: app.sessions, box: createSecretBox(app.secretKey, TOTP_SECRET_PURPOSE), issuer: 'Roster' })
  app.decorate('mfa', mfa)

  async function purge (): Promise<void> {
    try {
      await mfa.repository.purgeTokenUses()
    } catch (err) {
      app.log.warn({ err }, 'could not delete expired mfa_token uses')
    }
  }
  let timer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    await purge()
    timer = setInterval(purge, PURGE_INTERVAL).unref()
  })
  app.addHook('onClose', async () => { clearInterval(timer) })
}, { name: 'mfa', dependencies: ['db', 'secret-key', 'audit', 'sessions', 'webhooks'] })
