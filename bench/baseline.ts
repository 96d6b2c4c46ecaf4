/**
 * The baseline: a bare Fastify server, no plugins, doing the essential work of
 * each Roster endpoint by hand with node-postgres — verify the same EdDSA JWT,
 * look up its session, run the same SQL — and nothing else: no validation
 * beyond what the SQL needs, no problem+json, no audit of errors, no logging.
 * Roster's figures are reported as ratios to this server's, measured in the
 * same run.
 */
import Fastify from 'fastify'
import pg from 'pg'
import { createVerifier, createSigner } from 'fast-jwt'
import { createHash, randomBytes, randomUUID } from 'node:crypto'

const env = process.env as Record<string, string>
const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 10 })
const verify = createVerifier({ key: env.JWT_PUBLIC_KEY, algorithms: ['EdDSA'], allowedIss: env.JWT_ISSUER, allowedAud: env.JWT_AUDIENCE, checkTyp: 'at+jwt' })
const sign = createSigner({ key: env.JWT_PRIVATE_KEY, algorithm: 'EdDSA', iss: env.JWT_ISSUER, aud: env.JWT_AUDIENCE, expiresIn: 900_000, kid: env.JWT_KID, header: { alg: 'EdDSA', typ: 'at+jwt' } })

const COLUMNS = 'id, email, name, active, created_by AS "createdBy", created_at AS "createdAt", updated_at AS "updatedAt", version'
const SESSION_LIVE = 'SELECT 1 FROM sessions WHERE id = $1 AND admin_id = $2 AND revoked_at IS NULL AND expires_at > now() AND idle_expires_at > now()'

const app = Fastify({ logger: false })

async function authenticate (authorization: string | undefined): Promise<{ sub: string, sid: string } | null> {
  try {
    const claims = verify((authorization ?? '').slice(7)) as { sub: string, sid: string }
    const { rowCount } = await pool.query(SESSION_LIVE, [claims.sid, claims.sub])
    return rowCount === 1 ? claims : null
  } catch {
    return null
  }
}

const etag = (u: { id: string, version: number }) => `"${u.id}.${u.version}"`

app.get<{ Params: { id: string } }>('/users/:id', async (req, reply) => {
  if (await authenticate(req.headers.authorization) === null) return await reply.code(401).send({ error: 'unauthorized' })
  const { rows } = await pool.query(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [req.params.id])
  if (rows.length === 0) return await reply.code(404).send({ error: 'not found' })
  return await reply.header('etag', etag(rows[0])).send(rows[0])
})

app.get<{ Querystring: { limit?: string, q?: string } }>('/users', async (req, reply) => {
  if (await authenticate(req.headers.authorization) === null) return await reply.code(401).send({ error: 'unauthorized' })
  const limit = Number(req.query.limit ?? 50)
  const { rows } = req.query.q === undefined
    ? await pool.query(`SELECT ${COLUMNS} FROM users ORDER BY created_at, id LIMIT $1`, [limit + 1])
    : await pool.query(`SELECT ${COLUMNS} FROM users WHERE lower(email) LIKE $1 OR lower(coalesce(name, '')) LIKE $1 ORDER BY created_at, id LIMIT $2`, [`%${req.query.q.toLowerCase()}%`, limit + 1])
  if (rows.length > limit) reply.header('link', '</users?cursor=next>; rel="next"')
  return rows.slice(0, limit)
})

app.post<{ Body: { email: string, name?: string } }>('/users', async (req, reply) => {
  const claims = await authenticate(req.headers.authorization)
  if (claims === null) return await reply.code(401).send({ error: 'unauthorized' })
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const { rows } = await client.query(`INSERT INTO users (email, name, created_by) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`, [req.body.email, req.body.name ?? null, claims.sub])
    await client.query('INSERT INTO audit_events (actor_id, action, target_type, target_id, request_id, changes) VALUES ($1, $2, $3, $4, $5, $6)', [claims.sub, 'user.create', 'user', rows[0].id, req.id, { email: req.body.email, name: req.body.name ?? null }])
    await client.query('COMMIT')
    return await reply.code(201).header('location', `/users/${rows[0].id as string}`).header('etag', etag(rows[0])).send(rows[0])
  } catch {
    await client.query('ROLLBACK')
    return await reply.code(409).send({ error: 'conflict' })
  } finally {
    client.release()
  }
})

app.patch<{ Params: { id: string }, Body: { name?: string } }>('/users/:id', async (req, reply) => {
  const claims = await authenticate(req.headers.authorization)
  if (claims === null) return await reply.code(401).send({ error: 'unauthorized' })
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const { rows } = await client.query(`UPDATE users SET name = $2, version = version + 1, updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`, [req.params.id, req.body.name ?? null])
    await client.query('INSERT INTO audit_events (actor_id, action, target_type, target_id, request_id, changes) VALUES ($1, $2, $3, $4, $5, $6)', [claims.sub, 'user.update', 'user', req.params.id, req.id, { name: req.body.name ?? null }])
    await client.query('COMMIT')
    return await reply.header('etag', etag(rows[0])).send(rows[0])
  } finally {
    client.release()
  }
})

app.post<{ Body: { refresh_token: string } }>('/auth/refresh', async (req, reply) => {
  const hash = createHash('sha256').update(req.body.refresh_token).digest('base64url')
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const { rows } = await client.query(
      `UPDATE refresh_tokens r SET used_at = now() FROM sessions s
        WHERE r.token_hash = $1 AND r.used_at IS NULL AND s.id = r.session_id AND s.revoked_at IS NULL AND s.expires_at > now() AND s.idle_expires_at > now()
        RETURNING s.id AS sid, s.admin_id AS sub`, [hash])
    if (rows.length === 0) { await client.query('ROLLBACK'); return await reply.code(401).send({ error: 'invalid' }) }
    const token = randomBytes(32).toString('base64url')
    await client.query('INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)', [createHash('sha256').update(token).digest('base64url'), rows[0].sid])
    await client.query("UPDATE sessions SET last_used_at = now(), idle_expires_at = now() + interval '7 days' WHERE id = $1", [rows[0].sid])
    await client.query('COMMIT')
    return { access_token: sign({ sub: rows[0].sub, sid: rows[0].sid, jti: randomUUID() }), refresh_token: token, token_type: 'Bearer', expires_in: 900 }
  } finally {
    client.release()
  }
})

await app.listen({ host: '127.0.0.1', port: Number(env.PORT) })
process.on('SIGTERM', () => { app.close().then(async () => { await pool.end() }, () => {}) })
