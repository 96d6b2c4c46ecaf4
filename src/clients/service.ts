import type { ClientTokenView, ClientView, NewClientBody } from '../../schemas/clients.ts'
import { CLIENTS_LISTED, SECRETS_PER_CLIENT } from '../../schemas/clients.ts'
import type { AuditAction, AuditService } from '../audit/service.ts'
import { requireRecentLogin, type AdminActor } from '../infra/actor.ts'
import { hashToken, randomToken } from '../infra/crypto.ts'
import { transaction, type Database, type Queryable } from '../infra/database.ts'
import { errors } from '../infra/errors.ts'
import { clientsErrors, OAuthError } from './errors.ts'
import { createClientsRepository } from './repository.ts'

export interface ClientsDeps {
  db: Database
  audit: Pick<AuditService, 'record'>
  /** Access tokens for clients, and THE forget path of the authentication cache (plugins/auth.ts). */
  tokens: { issueClientToken: (clientId: string, scopes: readonly string[]) => { accessToken: string, expiresIn: number }, forgetClient: (clientId: string) => Promise<void> }
}

/** Client credentials as the token endpoint received them (HTTP Basic or form fields). */
export interface ClientCredentials { clientId: string, clientSecret: string }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * API clients: machines calling the API with OAuth 2.0 client credentials
 * (RFC 6749 §4.4). A secret is 32 random bytes shown once and stored as its
 * SHA-256 only: nobody guesses 256 random bits, so a slow hash (argon2) would
 * protect nothing more and only make every token request CPU-heavy. Managing clients (create, delete, secrets) needs a recent
 * login (step-up).
 */
export function createClientsService ({ db, audit, tokens }: ClientsDeps) {
  const repository = createClientsRepository(db)
  const record = async (tx: Queryable, actor: AdminActor, action: AuditAction, clientId: string, changes: Record<string, unknown>): Promise<void> =>
    await audit.record(tx, { actor: { type: 'admin', id: actor.id }, action, targetType: 'client', targetId: clientId, requestId: actor.requestId, changes })
  const existing = async (tx: Queryable, id: string): Promise<number> => {
    const secrets = await repository.lock(tx, id)
    if (secrets === null) throw new errors.NotFound(`No API client with id ${id}`)
    return secrets
  }

  return {
    repository,

    async create (actor: AdminActor, body: NewClientBody): Promise<ClientView & { client_secret: string }> {
      requireRecentLogin(actor)
      const secret = randomToken()
      const id = await transaction(db, async (tx) => {
        const id = await repository.insert(tx, { name: body.name, scopes: body.scopes, createdBy: actor.id })
        await repository.addSecret(tx, id, hashToken(secret))
        await record(tx, actor, 'client.create', id, { name: body.name, scopes: body.scopes })
        return id
      })
      return { ...await repository.get(id), client_secret: secret }
    },

    list: async (): Promise<ClientView[]> => await repository.list(CLIENTS_LISTED),

    /** Deletes a client: its secrets go, and its access tokens are refused at once on every instance (within SESSION_CACHE_TTL when a notification is missed). */
    async remove (actor: AdminActor, id: string): Promise<void> {
      requireRecentLogin(actor)
      await transaction(db, async (tx) => {
        await existing(tx, id)
        await record(tx, actor, 'client.delete', id, {})
        await repository.remove(tx, id)
      })
      await tokens.forgetClient(id)
    },

    /** A second secret for a rotation (SECRETS_PER_CLIENT active at most, else 409). */
    async addSecret (actor: AdminActor, id: string): Promise<{ id: string, createdAt: string, lastUsedAt: string | null, client_secret: string }> {
      requireRecentLogin(actor)
      const secret = randomToken()
      const added = await transaction(db, async (tx) => {
        if (await existing(tx, id) >= SECRETS_PER_CLIENT) throw new clientsErrors.TooManySecrets(String(SECRETS_PER_CLIENT))
        const added = await repository.addSecret(tx, id, hashToken(secret))
        await record(tx, actor, 'client.secret_create', id, { secretId: added.id })
        return added
      })
      return { ...added, client_secret: secret }
    },

    /** Deletes one secret (the old one, after a rotation): it gets no new tokens; tokens it got stay valid until they expire. */
    async removeSecret (actor: AdminActor, id: string, secretId: string): Promise<void> {
      requireRecentLogin(actor)
      await transaction(db, async (tx) => {
        await existing(tx, id)
        if (!await repository.removeSecret(tx, id, secretId)) throw new errors.NotFound(`No secret ${secretId} of API client ${id}`)
        await record(tx, actor, 'client.secret_delete', id, { secretId })
      })
    },

    /**
     * POST /auth/token, grant_type=client_credentials: one statement checks the
     * secret and records its use; the token carries the requested scopes (all
     * of the client's when none are asked for).
     */
    async issueToken (grantType: string, credentials: ClientCredentials | null, scope: string | undefined): Promise<ClientTokenView> {
      if (grantType !== 'client_credentials') throw new OAuthError('unsupported_grant_type', 'Only grant_type=client_credentials is supported')
      if (credentials === null) throw new OAuthError('invalid_client', 'Client authentication is required: HTTP Basic, or client_id and client_secret form fields')
      const scopes = UUID.test(credentials.clientId) ? await repository.authenticate(credentials.clientId, hashToken(credentials.clientSecret)) : null
      if (scopes === null) throw new OAuthError('invalid_client', 'Unknown client, or wrong secret')
      const asked = scope === undefined ? scopes : scope.split(' ').filter((s) => s !== '')
      const refused = asked.filter((s) => !scopes.includes(s))
      if (refused.length > 0 || asked.length === 0) throw new OAuthError('invalid_scope', refused.length > 0 ? `Not granted to this client: ${refused.join(' ')}` : 'No scope asked for')
      const granted = [...new Set(asked)]
      const { accessToken, expiresIn } = tokens.issueClientToken(credentials.clientId, granted)
      return { access_token: accessToken, token_type: 'Bearer', expires_in: expiresIn, scope: granted.join(' ') }
    }
  }
}

export type ClientsService = ReturnType<typeof createClientsService>
