import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { ClientToken, OAuthError as OAuthErrorSchema, TokenRequest, type TokenRequestBody } from '../../schemas/clients.ts'
import { problems } from '../../schemas/problem.ts'
import { OAuthError } from '../../src/clients/errors.ts'
import type { ClientCredentials } from '../../src/clients/service.ts'
import { FORM } from '../../src/infra/body.ts'
import { errors } from '../../src/infra/errors.ts'
import { errorHandler, validationErrors } from '../../src/infra/problem.ts'

const BASIC = /^Basic +([A-Za-z0-9+/]+=*)$/i

/** RFC 6749 §2.3.1: HTTP Basic with the form-urlencoded client id and secret, or the client_id and client_secret fields; never both. */
function credentialsOf (request: FastifyRequest<{ Body: TokenRequestBody }>): ClientCredentials | null {
  const header = request.headers.authorization
  const { client_id: id, client_secret: secret } = request.body
  if (header !== undefined) {
    const encoded = BASIC.exec(header)?.[1]
    const decoded = encoded === undefined ? '' : Buffer.from(encoded, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon < 0) throw new OAuthError('invalid_client', 'The Authorization header is not HTTP Basic with client_id:client_secret')
    if (id !== undefined || secret !== undefined) throw new OAuthError('invalid_request', 'Use HTTP Basic or the client_id and client_secret fields, not both')
    try {
      return { clientId: decodeURIComponent(decoded.slice(0, colon)), clientSecret: decodeURIComponent(decoded.slice(colon + 1)) }
    } catch {
      throw new OAuthError('invalid_client', 'The Basic credentials are not form-urlencoded')
    }
  }
  if (id === undefined && secret === undefined) return null
  if (id === undefined || secret === undefined) throw new OAuthError('invalid_request', 'client_id and client_secret go together')
  return { clientId: id, clientSecret: secret }
}

/**
 * Errors of the grant answer as RFC 6749 §5.2 says (application/json
 * `{error, error_description}`, invalid_client 401 with WWW-Authenticate),
 * not problem+json: the RFC wins on this route. Errors before the grant is
 * looked at (413, 415, 429, 5xx) stay problem+json like everywhere else.
 */
function oauthErrors (err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply | Promise<FastifyReply> {
  let oauth: OAuthError | undefined
  if (err instanceof OAuthError) oauth = err
  else if (err.validation !== undefined) oauth = new OAuthError('invalid_request', validationErrors(err).map((e) => `${e.path.replace(/^\/body\//, '')} ${e.message}`).join('; '))
  if (oauth === undefined) return errorHandler(err, request, reply)
  request.log.info({ error: oauth.error, detail: oauth.description }, 'token request refused')
  if (oauth.error === 'invalid_client') reply.header('www-authenticate', 'Basic realm="roster", charset="UTF-8"')
  return reply.code(oauth.statusCode).header('cache-control', 'no-store').type('application/json; charset=utf-8').send({ error: oauth.error, error_description: oauth.description })
}

/** POST /auth/token: API clients get access tokens (OAuth 2.0 client credentials, RFC 6749 §4.4). */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/token', {
    // Form bodies, as RFC 6749 requires (plugins/body.ts), and only them: `consumes` says so.
    config: { public: true, formBody: true },
    errorHandler: oauthErrors,
    // The RFC's encoding only: a JSON body is a 415 before it is parsed (after the rate limit).
    preParsing: async (request, _reply, payload) => {
      const type = request.headers['content-type']
      if (type !== undefined && !type.toLowerCase().startsWith(FORM)) throw new errors.UnsupportedMediaType(`POST /auth/token takes ${FORM} (RFC 6749 §4.4.2)`)
      return payload
    },
    schema: {
      summary: 'Get an access token for an API client (client credentials)',
      description: 'OAuth 2.0 client credentials grant (RFC 6749 §4.4): form-encoded `grant_type=client_credentials` and optionally `scope`; the client authenticates with HTTP Basic (client_id:client_secret) or the client_id and client_secret fields. Errors of the grant are RFC 6749 §5.2 JSON (`invalid_request`, `invalid_client`, `invalid_scope`, `unsupported_grant_type`), not problem+json.',
      consumes: [FORM],
      body: TokenRequest,
      response: {
        200: ClientToken,
        400: { description: 'RFC 6749 §5.2 error', content: { 'application/json': { schema: OAuthErrorSchema } } },
        401: { description: 'invalid_client (RFC 6749 §5.2)', headers: { 'WWW-Authenticate': { type: 'string' } }, content: { 'application/json': { schema: OAuthErrorSchema } } },
        ...problems(415, 429)
      }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    return await app.clients.issueToken(request.body.grant_type, credentialsOf(request), request.body.scope)
  })
}
export default plugin
