import fp from 'fastify-plugin'
import fastifyJwt, { type TokenOrHeader } from '@fastify/jwt'
import { createSigner, createVerifier } from 'fast-jwt'
import { randomUUID } from 'node:crypto'
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { loadKeys, type KeySet } from '../src/sessions/keys.ts'
import { createKeyring, type Keyring } from '../src/sessions/keyring.ts'
import { clientKey, endedPayloads, LiveSessionCache, SESSIONS_ENDED_CHANNEL } from '../src/sessions/live-cache.ts'
import type { Actor, AdminActor } from '../src/infra/actor.ts'
import { createSessionsRepository } from '../src/sessions/repository.ts'
import { createClientsRepository } from '../src/clients/repository.ts'
import { allows, describeAccess, isPermission, type Access, type Principal } from '../src/admins/permissions.ts'
import { isDatabaseUnavailable } from '../src/infra/database.ts'
import { errors, withLogReason } from '../src/infra/errors.ts'
import { publicUrl } from '../src/config.ts'
import { resolveFromRoot } from '../src/infra/paths.ts'
import type { Scope } from '../schemas/admins.ts'

export interface AccessTokenClaims {
  sub: string
  jti: string
  iat: number
  exp: number
  iss: string
  aud: string
  /** Admin tokens: the session. */
  sid?: string
  /** Admin tokens: when the admin last proved who they are (login or a fresh code), seconds since the epoch. */
  auth_time?: number
  /** API client tokens (RFC 9068 §2.2): the client, also `sub`; its presence tells a client's token from an admin's. */
  client_id?: string
  /** API client tokens: the granted scopes, space-separated. */
  scope?: string
}

/** What an mfa_token carries: the admin, and the throttle key (normalised email) its codes count against. */
export interface MfaTokenClaims { sub: string, jti: string, email: string, exp: number }

declare module 'fastify' {
  interface FastifyInstance {
    auth: {
      /** This instance's own keys (JWT_PRIVATE_KEY, JWT_PREVIOUS_PUBLIC_KEYS). */
      keys: KeySet
      /** The keys of the whole fleet (src/sessions/keyring.ts): what verifies here, and the JWKS. */
      keyring: Keyring
      issuer: string
      audience: string
      /** Signs an admin's access token for a session: `{ accessToken, expiresIn }`. */
      issueAccessToken: (adminId: string, sessionId: string, authTime: number) => { accessToken: string, expiresIn: number }
      /** Signs an API client's access token with its granted scopes. */
      issueClientToken: (clientId: string, scopes: readonly string[]) => { accessToken: string, expiresIn: number }
      /** The single-purpose token between a login's password and its second factor (5 min; never a bearer token). */
      mfaTokens: { issue: (adminId: string, email: string) => string, verify: (token: string) => Promise<MfaTokenClaims | null>, ttl: number }
      /**
       * THE forget path: drops the cached checks of sessions (ended, or their admin's role or MFA changed)
       * here at once, and on every other instance through NOTIFY (within SESSION_CACHE_TTL when one is missed).
       */
      forgetSessions: (sessionIds: string[]) => Promise<void>
      /** The same for a deleted API client. */
      forgetClient: (clientId: string) => Promise<void>
    }
  }
  interface FastifyRequest {
    /** Who calls, on every route that is not `public` (plugins/auth.ts). */
    principal: Principal
  }
  interface FastifyContextConfig {
    /** The route needs no access token. */
    public?: boolean
    /** What the route needs (src/admins/permissions.ts); every route that is not public declares one. */
    permission?: Exclude<Access, 'public'>
    /** With MFA_REQUIRED=true, an admin without MFA may still use this route (enrolment, their account, logout). */
    beforeMfa?: boolean
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: Record<string, unknown>
    user: AccessTokenClaims
  }
}

/** Who acts in an authenticated request (an admin or an API client), for the audit log. */
export function actorOf (request: FastifyRequest): Actor {
  const p = request.principal
  return p.kind === 'admin' ? adminActorOf(request) : { type: 'client', id: p.id, requestId: request.id, ip: request.ip }
}

/** The admin acting on a `self` route (those never let an API client through). */
export function adminActorOf (request: FastifyRequest): AdminActor {
  const p = request.principal
  /* c8 ignore next -- `self` routes refuse API clients in the hook */
  if (p.kind !== 'admin') throw new errors.Forbidden('This route is for admins')
  return { type: 'admin', id: p.id, sessionId: p.sessionId, authTime: p.authTime, requestId: request.id, ip: request.ip }
}

/** Who made a request (an admin or an API client), as its "request completed" log line names it; undefined before (or without) authentication. */
export function requestActor (request: FastifyRequest): { kind: 'admin' | 'client', id: string } | undefined {
  const p = request.principal as Principal | null | undefined
  return p == null ? undefined : { kind: p.kind, id: p.id }
}

/**
 * Verified access tokens kept (fast-jwt's LRU, keyed by the token's SHA-512): at most
 * JWT_CACHE_ENTRIES, and in bytes: an entry holds the decoded token (its parts and its signed
 * input, about three times its length) or the error of a refused one, and no token longer than
 * MAX_TOKEN_LENGTH is verified at all (one Roster signs is well under 1 KB; a longer bearer is
 * refused as invalid, as it would be anyway), so an entry is at most about 7 KB and the cache at
 * most about 7 MB (about 2 MB with Roster's own tokens). (The session checks' cache is bounded in
 * src/sessions/live-cache.ts.)
 */
export const JWT_CACHE_ENTRIES = 1_000
export const MAX_TOKEN_LENGTH = 2048

const BEARER = new RegExp(`^Bearer +((?=[A-Za-z0-9_.-]{1,${MAX_TOKEN_LENGTH}}$)[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*)$`)
/** `sub` and `sid` are uuids (the checks hand them to PostgreSQL as such). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const MFA_TTL = 300

function invalidToken (reply: FastifyReply, detail: string): Error {
  reply.header('www-authenticate', 'Bearer realm="roster", error="invalid_token"')
  return new errors.Unauthorized(detail)
}

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
 * Every route is authenticated unless it says `config: { public: true }`: an
 * admin's token must belong to a live session (whose admin's role and MFA
 * state are read with it), a client's to a client that still exists; both
 * checks are cached for at most SESSION_CACHE_TTL and forgotten on every
 * instance as soon as a session ends, a role changes or a client goes (NOTIFY
 * on SESSIONS_ENDED_CHANNEL). A refused token's log line says why. Then THE
 * permission check: the route's declared permission against the admin's role
 * or the client's scopes (403 ROSTER_FORBIDDEN naming it). A route that
 * declares neither `public` nor a permission stops the app from starting.
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

  /** The public key (PEM) a token's kid names among the fleet's (the keyring); `unknown()` is thrown when no instance holds it. */
  async function fleetKey (kid: unknown, unknown: () => Error): Promise<string> {
    const key = await keyring.keyFor(String(kid))
    if (key === undefined) throw unknown()
    return key.pem
  }

  await app.register(fastifyJwt, {
    secret: {
      private: keys.privatePem,
      // With `decode.complete`, @fastify/jwt hands over the decoded token: pick the verifying key by its kid.
      public: async (_request: FastifyRequest, decoded: TokenOrHeader) =>
        await fleetKey((decoded as { header: { kid?: string } }).header.kid, () => new errors.Unauthorized('The access token was signed by an unknown key'))
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
      requiredClaims: ['sub', 'jti', 'iat', 'exp', 'iss', 'aud'],
      cache: JWT_CACHE_ENTRIES,
      // Only reached with an Authorization header (the hook answers its absence itself).
      extractToken: (request: FastifyRequest) => BEARER.exec(request.headers.authorization as string)?.[1]
    }
  })

  // The mfa_token: another typ and audience, so it is never accepted as an access token (nor one as it).
  const mfaAudience = `${audience}#mfa`
  const signMfa = createSigner({ key: keys.privatePem, algorithm: 'EdDSA', iss: issuer, aud: mfaAudience, expiresIn: MFA_TTL * 1000, kid: keys.kid, header: { alg: 'EdDSA', typ: 'mfa+jwt' } })
  // Verified, like an access token, by the key its kid names among the fleet's (the keyring): the two steps of a
  // login may reach two instances, one of them holding the next key during a rotation, or a restarted one.
  const verifyMfa = createVerifier({
    key: async ({ header }: { header: { kid?: unknown } }) => await fleetKey(header.kid, () => new Error('the mfa_token was signed by an unknown key')),
    algorithms: ['EdDSA'],
    allowedIss: issuer,
    allowedAud: mfaAudience,
    checkTyp: 'mfa+jwt',
    requiredClaims: ['sub', 'jti', 'email', 'exp']
  })

  const clients = createClientsRepository(app.db)
  const live = new LiveSessionCache<Principal>(config.SESSION_CACHE_TTL)
  app.notifications.subscribe(SESSIONS_ENDED_CHANNEL, {
    notify: (payload) => { live.forget(payload.split(',')) },
    // Ends announced while the LISTEN connection was down are lost: trust nothing cached before.
    connected: () => { live.clear() }
  })

  /** Forgets cached checks here at once, and on every other instance through NOTIFY. */
  async function forget (cached: string[]): Promise<void> {
    live.forget(cached)
    try {
      for (const payload of endedPayloads(cached)) await app.notifications.notify(SESSIONS_ENDED_CHANNEL, payload)
    } catch (err) {
      // The change is committed; the other instances see it within SESSION_CACHE_TTL instead.
      app.log.warn({ err, keys: cached }, 'could not announce ended sessions to the other instances')
    }
  }

  app.decorate('auth', {
    keys,
    keyring,
    issuer,
    audience,
    issueAccessToken (adminId: string, sessionId: string, authTime: number) {
      const accessToken = app.jwt.sign({ sub: adminId, sid: sessionId, auth_time: authTime, jti: randomUUID() })
      return { accessToken, expiresIn: config.ACCESS_TOKEN_TTL }
    },
    issueClientToken (clientId: string, scopes: readonly string[]) {
      const accessToken = app.jwt.sign({ sub: clientId, client_id: clientId, scope: scopes.join(' '), jti: randomUUID() })
      return { accessToken, expiresIn: config.ACCESS_TOKEN_TTL }
    },
    mfaTokens: {
      ttl: MFA_TTL,
      issue: (adminId: string, email: string) => signMfa({ sub: adminId, email, jti: randomUUID() }),
      async verify (token: string): Promise<MfaTokenClaims | null> {
        try {
          return await verifyMfa(token) as MfaTokenClaims
        } catch (err) {
          // The database did not answer for the fleet's keys (a kid not known here): a 503, as for an access token.
          const cause = (err as { originalError?: Error }).originalError
          if (cause !== undefined && isDatabaseUnavailable(cause)) throw cause
          return null
        }
      }
    },
    forgetSessions: forget,
    async forgetClient (clientId: string) { await forget([clientKey(clientId)]) }
  })
  app.decorateRequest('principal', null as never)

  /** Who the token's holder is (a client with every scope it holds), or null when its session ended or its client is gone. */
  async function lookup (claims: AccessTokenClaims): Promise<Principal | null> {
    if (typeof claims.client_id === 'string') {
      // A client's token: `sub` is the client (so is client_id, which marks the kind).
      const scopes = await clients.liveScopes(claims.sub)
      return scopes === null ? null : { kind: 'client', id: claims.sub, scopes: scopes as Scope[] }
    }
    const sid = claims.sid as string
    const row = await sessions.liveSession(sid, claims.sub)
    return row === null ? null : { kind: 'admin', id: claims.sub, sessionId: sid, role: row.role, mfa: row.mfa, authTime: null }
  }

  /** What this token may do: an admin's with its auth_time, a client's narrowed to the scopes the token was granted. */
  function narrow (found: Principal, claims: AccessTokenClaims): Principal {
    if (found.kind === 'admin') return { ...found, authTime: typeof claims.auth_time === 'number' ? claims.auth_time : null }
    const granted = String(claims.scope).split(' ')
    return { ...found, scopes: found.scopes.filter((s) => granted.includes(s)) }
  }

  // Every route declares what it needs; checked once all are registered (some are made public by their own plugin's hook).
  const routes: RouteOptions[] = []
  app.addHook('onRoute', (route) => { routes.push(route) })
  app.addHook('onReady', async () => {
    const undeclared: string[] = []
    for (const route of routes) {
      const access: Access | undefined = route.config?.public === true ? 'public' : route.config?.permission
      if (access === undefined || (access !== 'public' && access !== 'self' && !isPermission(access))) {
        undeclared.push(`${String(route.method)} ${route.url}`)
        continue
      }
      const schema = route.schema as { description?: string, hide?: boolean, 'x-permission'?: string } | undefined
      // A GET's automatic HEAD route shares its schema: document each schema once.
      if (schema === undefined || schema.hide === true || schema['x-permission'] !== undefined) continue
      schema['x-permission'] = access
      schema.description = [schema.description, describeAccess(access)].filter((d) => d !== undefined).join(' ')
    }
    routes.length = 0
    if (undeclared.length > 0) throw new Error(`routes without a declared access (config.public or config.permission): ${undeclared.join(', ')}`)
  })

  app.addHook('onRequest', async (request, reply) => {
    const routeConfig = request.routeOptions.config
    if (routeConfig.public === true || request.is404) return
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
      const token = BEARER.exec(request.headers.authorization)?.[1]
      const reason = keyring.explain(decodePart(token, 0).kid, decodePart(token, 1).iss) ?? (err as Error).message
      throw withLogReason(invalidToken(reply, 'The access token is invalid or expired'), reason)
    }
    const client = typeof claims.client_id === 'string'
    // Signed by a key we trust, yet not a token Roster makes (a key shared with another issuer, a bug).
    if (typeof claims.sub !== 'string' || !UUID.test(claims.sub) || (!client && (typeof claims.sid !== 'string' || !UUID.test(claims.sid)))) {
      throw invalidToken(reply, 'The access token names no session or API client Roster would issue')
    }
    const key = client ? clientKey(claims.sub) : claims.sid as string
    const now = Date.now()
    let found = live.get(key, claims.sub, now) ?? null
    if (found === null) {
      const mark = live.mark
      found = await lookup(claims)
      if (found === null) throw invalidToken(reply, client ? 'The API client of this access token no longer exists' : 'The session of this access token has ended')
      live.remember(key, claims.sub, found, now, mark)
    }
    const principal = narrow(found, claims)
    request.principal = principal
    const permission = routeConfig.permission as Exclude<Access, 'public'>
    if (!allows(principal, permission)) {
      throw new errors.Forbidden(permission === 'self'
        ? 'This route is for admins, on their own account: an API client cannot use it'
        : `This needs the permission ${permission}, which ${principal.kind === 'admin' ? `your role (${principal.role}) does not include` : 'this API client\'s token does not carry (scope)'}`)
    }
    if (config.MFA_REQUIRED && principal.kind === 'admin' && !principal.mfa && routeConfig.beforeMfa !== true) {
      throw new errors.MfaEnrolmentRequired()
    }
  })
}, { name: 'auth', dependencies: ['config', 'db', 'notifications'] })
