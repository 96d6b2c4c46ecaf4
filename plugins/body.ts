import fp from 'fastify-plugin'
import { FORM, illFormedError, illFormedPath, parseForm, requireUtf8 } from '../src/infra/body.ts'
import { errors } from '../src/infra/errors.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route also takes `application/x-www-form-urlencoded` bodies (every other route: JSON only, else 415). */
    formBody?: boolean
  }
}

/**
 * THE request body parsers, for every route. JSON (`application/json`, UTF-8:
 * `charset` absent or utf-8) through Fastify's own parser (prototype poisoning
 * refused), and no string in it may hold a lone surrogate. Forms
 * (`application/x-www-form-urlencoded`) only on a route that says
 * `config: { formBody: true }`, which also lists the type in its OpenAPI
 * `consumes` (unless the route lists its own): the reset page, the invitation
 * page and OAuth's token endpoint. Elsewhere, as for any other media type (`text/plain`, XML,
 * multipart), 415. So no cross-site HTML form can post to a JSON route.
 */
export default fp(async (app) => {
  const json = app.getDefaultJsonParser('error', 'error')
  app.removeAllContentTypeParsers()

  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    try {
      requireUtf8(request.headers['content-type'] as string)
    } catch (err) {
      done(err as Error, undefined)
      return
    }
    json(request, body as string, (err, value) => {
      if (err !== null) { done(err, undefined); return }
      const path = illFormedPath(value)
      if (path === undefined) done(null, value)
      else done(illFormedError(path), undefined)
    })
  })

  app.addContentTypeParser(FORM, { parseAs: 'string' }, (request, body, done) => {
    try {
      if (request.routeOptions.config.formBody !== true) {
        throw new errors.UnsupportedMediaType(`This route takes application/json bodies, not ${FORM}`)
      }
      requireUtf8(request.headers['content-type'] as string)
      done(null, parseForm(body as string))
    } catch (err) {
      done(err as Error, undefined)
    }
  })

  // A form route takes JSON too unless its schema's `consumes` says otherwise (POST /auth/token: forms only).
  app.addHook('onRoute', (route) => {
    if (route.config?.formBody === true && route.schema?.consumes === undefined) route.schema = { ...route.schema, consumes: ['application/json', FORM] }
  })
}, { name: 'body' })
