import t from 'tap'
import { createRequire } from 'node:module'
import { Validator } from '@seriousme/openapi-schema-validator'
import { parse } from 'yaml'
import { build } from './helper.ts'

// First in this file: no test before it has asked for the UI in this process.
t.test('Swagger UI is loaded on the first request for it; the document is served without it', async (t) => {
  const loaded = (): boolean => Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('@fastify/swagger-ui'))
  const app = await build(t)
  const json = await app.inject({ url: '/apidocs/json' })
  t.equal(json.statusCode, 200)
  const yaml = await app.inject({ url: '/apidocs/yaml' })
  t.match(yaml.headers['content-type'], /^application\/x-yaml/)
  t.same(parse(yaml.body), json.json(), 'the same document in YAML')
  t.match(yaml.headers['content-security-policy'], /default-src 'none'/, 'with the docs\' policy')
  t.notOk(loaded(), 'not at start, nor for the document')

  const page = await app.inject({ url: '/apidocs' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.ok(loaded(), 'loaded for the page')
  t.equal(page.headers['x-request-id'] !== undefined, true, 'answered by this app, with its headers')

  const asset = await app.inject({ url: '/apidocs/static/swagger-ui.css' })
  t.equal(asset.statusCode, 200)
  t.match(asset.headers['content-type'], /^text\/css/)
  t.equal(Number(asset.headers['content-length']), asset.rawPayload.length)
  const again = await app.inject({ url: '/apidocs/static/swagger-ui.css', headers: { 'if-none-match': asset.headers.etag as string } })
  t.equal(again.statusCode, 304, 'ETag revalidation passes through')
  const head = await app.inject({ method: 'HEAD', url: '/apidocs/static/swagger-ui.css' })
  t.equal(head.statusCode, 200)
  t.equal(head.body, '')
  const missing = await app.inject({ url: '/apidocs/static/nothing-here.js' })
  t.equal(missing.statusCode, 405, 'this app\'s answer for a path only GET routes match, as @fastify/static in the app gave it')
  t.match(missing.headers['content-type'], /^application\/problem\+json/)
})

t.test('the OpenAPI document is valid OpenAPI 3.1 and documents errors as problem+json', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/apidocs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.equal(doc.openapi, '3.1.0')
  const validator = new Validator()
  const result = await validator.validate(doc)
  t.same(result.errors, undefined, 'no schema errors')
  t.equal(result.valid, true)
  t.same(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token from POST /auth/login' })
  t.ok(doc.components.schemas.Problem, 'Problem schema shared')
  t.ok(doc.paths['/health/ready'].get.responses['503'].content['application/problem+json'])
})

t.test('Swagger UI is served at /apidocs', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/apidocs/' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.body, /swagger-ui/)
})
