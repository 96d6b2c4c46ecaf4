import fp from 'fastify-plugin'
import fastifyJwt, { type TokenOrHeader } from '@fastify/jwt'
import { randomUUID } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { loadKeys, type KeySet } from '../src/sessions/keys.ts'
import type { Actor } from '../src/infra/actor.ts'
import { createSessionsRepository } from '../src/sessions/repository.ts'
import { errors } from '../src/infra/errors.ts'
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
      keys: KeySet
      issuer: string
      audience: string
      /** Signs an access token for a session: `{ access_token, expires_in }`. */
      issueAccessToken: (adminId: string, sessionId: string) => { accessToken: string, expiresIn: number }
      /** Forget cached liveness of a session on this instance (other instances forget within SESSION_CACHE_TTL). */
      forgetSession: (sessionId: string) => void
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

/** Who made a request, as its "request completed" log line names it; undefined before (or without) authentication. */
export function requestActor (request: FastifyRequest): { kind: 'admin', id: string } | undefined {
  const admin = request.admin as AuthAdmin | null | undefined
  return admin == null ? undefined : { kind: 'admin', id: admin.id }
}

/**
 * Verified access tokens kept (fast-jwt's LRU, keyed by the token's SHA-512): an entry holds the
 * decoded token (well under 2 KB for one Roster signs) or the error of a refused one, so at most
 * about 2 MB. Sessions known to be live: an entry is a session id and its admin's (about 200 bytes),
 * so at most about 2 MB; past it the entry checked longest ago goes.
 */
export const JWT_CACHE_ENTRIES = 1_000
export const SESSION_CACHE_ENTRIES = 10_000

const BEARER = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/

/**
 * Access tokens: EdDSA (Ed25519) JWTs through @fastify/jwt, header
 * `typ: at+jwt` and `kid`; verification pins the algorithm, typ, iss and aud
 * and picks the key by kid among the current and previous keys. Every route is
 * authenticated unless it says `config: { public: true }`; the token's session
 * must still be live (checked in Postgres, cached for at most SESSION_CACHE_TTL).
 */
export default fp(async (app) => {
  const { config } = app
  const keys = loadKeys({
    privateKey: config.JWT_PRIVATE_KEY,
    previousPublicKeys: config.JWT_PREVIOUS_PUBLIC_KEYS,
    production: config.NODE_ENV === 'production',
    dataDir: resolveFromRoot(config.DATA_DIR)
  })
  const byKid = new Map(keys.verifying.map((k) => [k.kid, k.pem]))
  const issuer = config.JWT_ISSUER ?? publicUrl(config)
  const audience = config.JWT_AUDIENCE

  await app.register(fastifyJwt, {
    secret: {
      private: keys.privatePem,
      // With `decode.complete`, @fastify/jwt hands over the decoded token: pick the verifying key by its kid.
      public: async (_request: FastifyRequest, decoded: TokenOrHeader) => {
        const pem = byKid.get(String((decoded as { header: { kid?: string } }).header.kid))
        if (pem === undefined) throw new errors.Unauthorized('The access token was signed by an unknown key')
        return pem
      }
    },
    decode: { complete: true },
    sign: { algorithm: 'EdDSA', iss: issuer, aud: audience, expiresIn: config.ACCESS_TOKEN_TTL, kid: keys.kid, header: { alg: 'EdDSA', typ: 'at+jwt' } },
    verify: {
      algorithms: ['EdDSA'],
      allowedIss: issuer,
      allowedAud: audience,
      checkTyp: 'at+jwt',
      requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp', 'iss', 'aud'],
      cache: JWT_CACHE_ENTRIES,
      // Only reached with an Authorization header (the hook answers its absence itself).
      extractToken: (request: FastifyRequest) => BEARER.exec(request.headers.authorization as string)?.[1]
    }
  })

  const sessions = createSessionsRepository(app.db)
  // sessionId -> its admin and the time (ms) until which it is known to be live
  const liveUntil = new Map<string, { sub: string, until: number }>()
  const cacheTtl = config.SESSION_CACHE_TTL

  app.decorate('auth', {
    keys,
    issuer,
    audience,
    issueAccessToken (adminId: string, sessionId: string) {
      const accessToken = app.jwt.sign({ sub: adminId, sid: sessionId, jti: randomUUID() })
      return { accessToken, expiresIn: config.ACCESS_TOKEN_TTL }
    },
    forgetSession (sessionId: string) { liveUntil.delete(sessionId) }
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
    } catch {
      reply.header('www-authenticate', 'Bearer realm="roster", error="invalid_token"')
      throw new errors.Unauthorized('The access token is invalid or expired')
    }
    const now = Date.now()
    const cached = liveUntil.get(claims.sid)
    if (cached === undefined || cached.sub !== claims.sub || cached.until <= now) {
      if (!await sessions.isLive(claims.sid, claims.sub)) {
        reply.header('www-authenticate', 'Bearer realm="roster", error="invalid_token"')
        throw new errors.Unauthorized('The session of this access token has ended')
      }
      // Deleted first, so that the Map's order is the order of the checks: the first entry is the oldest.
      liveUntil.delete(claims.sid)
      /* c8 ignore next -- a memory bound, reached only with more than SESSION_CACHE_ENTRIES sessions in use within the cache TTL */
      if (liveUntil.size >= SESSION_CACHE_ENTRIES) liveUntil.delete(liveUntil.keys().next().value as string)
      liveUntil.set(claims.sid, { sub: claims.sub, until: now + cacheTtl })
    }
    request.admin = { id: claims.sub, sessionId: claims.sid }
  })
}, { name: 'auth', dependencies: ['config', 'db'] })
