import type { ClientView } from '../../schemas/clients.ts'
import type { Database, Queryable } from '../infra/database.ts'
import { iso } from '../infra/sql.ts'

const SECRETS = `coalesce((SELECT json_agg(json_build_object('id', s.id, 'createdAt', ${iso('s.created_at')}, 'lastUsedAt', ${iso('s.last_used_at')}) ORDER BY s.created_at, s.id)
    FROM api_client_secrets s WHERE s.client_id = c.id), '[]'::json) AS secrets`
const COLUMNS = `c.id, c.id::text AS client_id, c.name, c.scopes, c.created_by AS "createdBy", ${iso('c.created_at')} AS "createdAt", ${SECRETS}`

const LIVE_SCOPES = { name: 'clients_live_scopes', text: 'SELECT scopes FROM api_clients WHERE id = $1' }
const INSERT = { name: 'clients_insert', text: 'INSERT INTO api_clients (name, scopes, created_by) VALUES ($1, $2, $3) RETURNING id' }
const GET = { name: 'clients_get', text: `SELECT ${COLUMNS} FROM api_clients c WHERE c.id = $1` }
const LOCK = { name: 'clients_lock', text: 'SELECT (SELECT count(*)::int FROM api_client_secrets WHERE client_id = c.id) AS secrets FROM api_clients c WHERE c.id = $1 FOR UPDATE' }
const LIST = { name: 'clients_list', text: `SELECT ${COLUMNS} FROM api_clients c ORDER BY c.created_at, c.id LIMIT $1` }
const DELETE = { name: 'clients_delete', text: 'DELETE FROM api_clients WHERE id = $1' }
const ADD_SECRET = {
  name: 'clients_add_secret',
  text: `INSERT INTO api_client_secrets (client_id, secret_hash) VALUES ($1, $2)
    RETURNING id, ${iso('created_at')} AS "createdAt", ${iso('last_used_at')} AS "lastUsedAt"`
}
const DELETE_SECRET = { name: 'clients_delete_secret', text: 'DELETE FROM api_client_secrets WHERE id = $2 AND client_id = $1 RETURNING id' }
/** A token request: the secret's hash must be one of the client's; its last use is recorded in the same statement. */
const AUTHENTICATE = {
  name: 'clients_authenticate',
  text: `UPDATE api_client_secrets s SET last_used_at = now() FROM api_clients c
    WHERE s.client_id = $1 AND s.secret_hash = $2 AND c.id = s.client_id RETURNING c.scopes`
}

/** The api_clients and api_client_secrets tables; each function one named statement, on the pool or the caller's `tx`. */
export function createClientsRepository (db: Database) {
  return {
    /** The scopes of a client that still exists, else null (the check of every request with a client's token). */
    async liveScopes (id: string): Promise<string[] | null> {
      return (await db.query<{ scopes: string[] }>({ ...LIVE_SCOPES, values: [id] })).rows[0]?.scopes ?? null
    },

    async insert (tx: Queryable, values: { name: string, scopes: string[], createdBy: string | null }): Promise<string> {
      return ((await tx.query<{ id: string }>({ ...INSERT, values: [values.name, values.scopes, values.createdBy] })).rows[0] as { id: string }).id
    },

    /** A client that exists (the caller made or locked it). */
    async get (id: string, tx: Queryable = db): Promise<ClientView> {
      return (await tx.query<ClientView>({ ...GET, values: [id] })).rows[0] as ClientView
    },

    /** Locks a client's row until the transaction ends; its number of secrets, or null when there is no such client. */
    async lock (tx: Queryable, id: string): Promise<number | null> {
      return (await tx.query<{ secrets: number }>({ ...LOCK, values: [id] })).rows[0]?.secrets ?? null
    },

    async list (limit: number): Promise<ClientView[]> {
      return (await db.query<ClientView>({ ...LIST, values: [limit] })).rows
    },

    /** Deletes a client (its secrets go with it). */
    async remove (tx: Queryable, id: string): Promise<void> {
      await tx.query({ ...DELETE, values: [id] })
    },

    async addSecret (tx: Queryable, clientId: string, secretHash: string): Promise<{ id: string, createdAt: string, lastUsedAt: string | null }> {
      return (await tx.query<{ id: string, createdAt: string, lastUsedAt: string | null }>({ ...ADD_SECRET, values: [clientId, secretHash] })).rows[0] as { id: string, createdAt: string, lastUsedAt: string | null }
    },

    async removeSecret (tx: Queryable, clientId: string, secretId: string): Promise<boolean> {
      return (await tx.query({ ...DELETE_SECRET, values: [clientId, secretId] })).rows.length === 1
    },

    /** The client's scopes when the secret is one of its own (recording its use), else null. */
    async authenticate (clientId: string, secretHash: string): Promise<string[] | null> {
      return (await db.query<{ scopes: string[] }>({ ...AUTHENTICATE, values: [clientId, secretHash] })).rows[0]?.scopes ?? null
    }
  }
}

export type ClientsRepository = ReturnType<typeof createClientsRepository>
