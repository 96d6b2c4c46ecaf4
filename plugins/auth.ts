import fp from 'fastify-plugin'
import fastifyJwt, { type TokenOrHeader } from '@fastify/jwt'
import { randomUUID } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { loadKeys, type KeySet } from '../src/sessions/keys.ts'
import { createKeyring, type Keyring } from '../src/sessions/keyring.ts'
import { endedPayloads, LiveSessionCache, SESSIONS_ENDED_CHANNEL } from '../src/sessions/live-cache.ts'
import type { Actor } from '../src/infra/actor.ts'
import { createSessionsRepository } from '../src/sessions/repository.ts'
import { isDatabaseUnavailable } from '../src/infra/database.ts'
import { errors, withLogReason } from '../src/infra/errors.ts'
import { publicUrl } from '../src/config.ts'
import { resolveFromRoot } from '../src/infra/paths.ts'

/** The authenticated admin of a request. */
export interface AuthAdmin {
  id: string
  sessionId: string
}

export interface AccessTokenClaims {
  sub: string
  sid: string
  jti: string
  iat: number
  exp: number
  iss: string
  aud: string
}

declare module 'fastify' {
  interface FastifyInstance {
    auth: {
      /** This instance's own keys (JWT_PRIVATE_KEY, JWT_PREVIOUS_PUBLIC_KEYS). */
      keys: KeySet
      /** The keys of the whole fleet (src/sessions/keyring.ts): what verifies here, and the JWKS. */
      keyring: Keyring
      issuer: string
      audience: string
      /** Signs an access token for a session: `{ access_token, expires_in }`. */
      issueAccessToken: (adminId: string, sessionId: string) => { accessToken: string, expiresIn: number }
      /** Forgets the cached liveness of ended sessions here at once, and on every other instance through NOTIFY. */
      forgetSessions: (sessionIds: string[]) => Promise<void>
    }
  }
  interface FastifyRequest {
    /** Set on every authenticated route; routes with `config: { public: true }` skip authentication. */
    admin: AuthAdmin
  }
  interface FastifyContextConfig {
    /** The route needs no access token. */
    public?: boolean
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string, sid: string, jti: string }
    user: AccessTokenClaims
  }
}

/** Who acts in an authenticated request: its admin, session and request id. */
export function actorOf (request: FastifyRequest): Actor {
  return { adminId: request.admin.id, sessionId: request.admin.sessionId, requestId: request.id }
}

const BEARER = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/

/** A part of a JWT, decoded without any check: only to say in the log why a token was refused. */
function decodePart (token: string | undefined, part: 0 | 1): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(String(token?.split('.')[part]), 'base64url').toString()) as Record<string, unknown>
  } catch {
    return {}
  }
}

/**
 * Access tokens: EdDSA (Ed25519) JWTs through @fastify/jwt, header
 * `typ: at+jwt` and `kid`; verification pins the algorithm, typ, iss and aud
 * and picks the key by kid among the keys of the fleet (the keyring: this
 * instance's current and previous keys, and those recorded by the others).
 * Every route is authenticated unless it says `config: { public: true }`; the
 * token's session must still be live: checked in PostgreSQL, cached for at most
 * SESSION_CACHE_TTL, and forgotten on every instance as soon as a session ends
 * (NOTIFY on SESSIONS_ENDED_CHANNEL). A refused token's log line says why.
 */
export default fp(async (app) => {
  const { config } = app
  const keys = loadKeys({
    privateKey: config.JWT_PRIVATE_KEY,
    previousPublicKeys: config.JWT_PREVIOUS_PUBLIC_KEYS,
    production: config.NODE_ENV === 'production',
    dataDir: resolveFromRoot(config.DATA_DIR)
  })
  const issuer = config.JWT_ISSUER ?? publicUrl(config)
  const audience = config.JWT_AUDIENCE
  const sessions = createSessionsRepository(app.db)
  const keyring = createKeyring({ repository: sessions, keys, issuer, accessTokenTtl: config.ACCESS_TOKEN_TTL, log: app.log.child({ component: 'keys' }) })
  // Before listening: another instance may see a token of this one the moment it is up. A failure (the
  // migrations not applied yet, MIGRATE_ON_START=false) is logged, and the heartbeat tries again.
  await keyring.beat()
  keyring.start()
  app.addHook('onClose', async () => { keyring.stop() })

  await app.register(fastifyJwt, {
    secret: {
      private: keys.privatePem,
      // With `decode.complete`, @fastify/jwt hands over the decoded token: pick the verifying key by its kid.
      public: async (_request: FastifyRequest, decoded: TokenOrHeader) => {
        const key = await keyring.keyFor(String((decoded as { header: { kid?: string } }).header.kid))
        if (key === undefined) throw new errors.Unauthorized('The access token was signed by an unknown key')
        return key.pem
      }
    },
    // fast-jwt's own reason (bad signature, expired, which claim), for the log line of the 401.
    messages: { authorizationTokenInvalid: (err: Error) => `Authorization token is invalid: ${err.message}` },
    decode: { complete: true },
    sign: { algorithm: 'EdDSA', iss: issuer, aud: audience, expiresIn: config.ACCESS_TOKEN_TTL, kid: keys.kid, header: { alg: 'EdDSA', typ: 'at+jwt' } },
    verify: {
      algorithms: ['EdDSA'],
      allowedIss: issuer,
      allowedAud: audience,
      checkTyp: 'at+jwt',
      requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp', 'iss', 'aud'],
      cache: 10_000,
      // Only reached with an Authorization header (the hook answers its absence itself).
      extractToken: (request: FastifyRequest) => BEARER.exec(request.headers.authorization as string)?.[1]
    }
  })

  const live = new LiveSessionCache(config.SESSION_CACHE_TTL)
  app.notifications.subscribe(SESSIONS_ENDED_CHANNEL, {
    notify: (payload) => { live.forget(payload.split(',')) },
    // Ends announced while the LISTEN connection was down are lost: trust nothing cached before.
    connected: () => { live.clear() }
  })

  app.decorate('auth', {
    keys,
    keyring,
    issuer,
    audience,
    issueAccessToken (adminId: string, sessionId: string) {
      const accessToken = app.jwt.sign({ sub: adminId, sid: sessionId, jti: randomUUID() })
      return { accessToken, expiresIn: config.ACCESS_TOKEN_TTL }
    },
    async forgetSessions (sessionIds: string[]) {
      live.forget(sessionIds)
      try {
        for (const payload of endedPayloads(sessionIds)) await app.notifications.notify(SESSIONS_ENDED_CHANNEL, payload)
      } catch (err) {
        // The sessions ended (committed); the other instances see it within SESSION_CACHE_TTL instead.
        app.log.warn({ err, sessionIds }, 'could not announce ended sessions to the other instances')
      }
    }
  })
  app.decorateRequest('admin', null as unknown as AuthAdmin)

  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.public === true || request.is404) return
    reply.header('cache-control', 'no-store')
    if (request.headers.authorization === undefined) {
      reply.header('www-authenticate', 'Bearer realm="roster"')
      throw new errors.Unauthorized('An access token is required: Authorization: Bearer <token>')
    }
    let claims: AccessTokenClaims
    try {
      claims = await request.jwtVerify<AccessTokenClaims>()
    } catch (err) {
      if (isDatabaseUnavailable(err as Error)) throw err
      reply.header('www-authenticate', 'Bearer realm="roster", error="invalid_token"')
      const token = BEARER.exec(request.headers.authorization)?.[1]
      const reason = keyring.explain(decodePart(token, 0).kid, decodePart(token, 1).iss) ?? (err as Error).message
      throw withLogReason(new errors.Unauthorized('The access token is invalid or expired'), reason)
    }
    const now = Date.now()
    if (!live.isLive(claims.sid, claims.sub, now)) {
      if (!await sessions.isLive(claims.sid, claims.sub)) {
        reply.header('www-authenticate', 'Bearer realm="roster", error="invalid_token"')
        throw new errors.Unauthorized('The session of this access token has ended')
      }
      live.remember(claims.sid, claims.sub, now)
    }
    request.admin = { id: claims.sub, sessionId: claims.sid }
  })
}, { name: 'auth', dependencies: ['config', 'db', 'notifications'] })
