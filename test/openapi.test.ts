import t from 'tap'
import { Validator } from '@seriousme/openapi-schema-validator'
import { build } from './helper.ts'

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
