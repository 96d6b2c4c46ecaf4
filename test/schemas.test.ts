/**
 * Validators and response serializers are compiled on a route's first use
 * (src/infra/validation.ts, src/infra/serialization.ts), not at start, where
 * Fastify would refuse a schema that does not compile: here every schema of
 * every route is compiled, as the start used to, so such a schema still fails
 * before it ships. And compiling lazily changes no answer.
 */
import t from 'tap'
import Fastify from 'fastify'
import SerializerSelector from '@fastify/fast-json-stringify-compiler'
import type { ValidateFunction } from 'ajv'
import app from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { serverOptions } from '../src/server-options.ts'
import { buildValidator } from '../src/infra/validation.ts'
import { buildSerializer } from '../src/infra/serialization.ts'
import { User } from '../schemas/users.ts'
import { build, createAdmin, createTestDatabase, loginAs, LogCapture, TEST_ENV } from './helper.ts'

t.test('every schema of every route compiles', async (t) => {
  const config = loadConfig({ ...TEST_ENV, DATABASE_URL: await createTestDatabase(t) }, '/dev/null')
  const validators: Array<{ route: { url?: string, httpPart?: string }, validate: ValidateFunction }> = []
  const serializers: Array<{ route: { url: string, httpStatus: string }, compile: () => unknown }> = []
  const options = serverOptions(config, { stdout: new LogCapture() })
  const fastify = Fastify({
    ...options,
    schemaController: {
      compilersFactory: {
        buildValidator: ((external: Record<string, unknown>, opts: Parameters<typeof buildValidator>[1]) => {
          const compile = buildValidator(external, opts)
          return (route: Parameters<ReturnType<typeof buildValidator>>[0]) => {
            const validate = compile(route)
            validators.push({ route, validate })
            return validate
          }
        }) as never,
        buildSerializer: ((external: Record<string, unknown>, opts: Parameters<typeof buildSerializer>[1]) => {
          const eager = SerializerSelector()(external as never, opts)
          const lazy = buildSerializer(external, opts)
          return (route: Parameters<ReturnType<typeof buildSerializer>>[0]) => {
            serializers.push({ route, compile: () => eager(route as never) })
            return lazy(route)
          }
        }) as never
      }
    }
  })
  t.after(() => fastify.close())
  await fastify.register(app, { config })
  await fastify.ready()
  t.ok(validators.length > 100, `${validators.length} validators`)
  t.ok(serializers.length > 300, `${serializers.length} serializers`)
  for (const { route, validate } of validators) {
    // Reading schemaEnv (as Fastify does before each call) compiles the validator.
    t.ok(validate.schemaEnv, `${route.url ?? ''} ${route.httpPart ?? ''}`)
  }
  for (const { route, compile } of serializers) t.type(compile(), 'function', `${route.url} ${route.httpStatus}`)
})

t.test('a validator compiled on its first call keeps its errors and coercion; a serializer its output', async (t) => {
  const compile = buildValidator({}, { customOptions: { allErrors: true } })
  const query = compile({ schema: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }, httpPart: 'querystring' })
  t.equal(query.errors, undefined, 'nothing compiled, nothing run')
  const data = { n: '7' }
  t.equal(query(data), true)
  t.same(data, { n: 7 })
  t.equal(query({}), false)
  t.match(query.errors, [{ keyword: 'required' }])
  const serialize = buildSerializer({})({ schema: { type: 'object', properties: { a: { type: 'string' } } }, method: 'GET', url: '/', httpStatus: '200' })
  t.equal(serialize({ a: 'x', secret: 'y' }), '{"a":"x"}')
  t.equal(serialize({ a: 'z' }), '{"a":"z"}', 'compiled once, used again')

  const appUnderTest = await build(t)
  const admin = await createAdmin(appUnderTest)
  const { headers } = await loginAs(appUnderTest, admin)
  const res = await appUnderTest.inject({ url: '/users?limit=0x10', headers })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { code: 'ROSTER_VALIDATION_FAILED', errors: [{ path: '/querystring/limit' }] })
  const created = await appUnderTest.inject({ method: 'POST', url: '/users', headers, payload: { email: 'lazy@example.com', name: 'Lazy' } })
  t.equal(created.statusCode, 201)
  const keys = Object.keys(created.json() as object)
  t.ok(keys.every((k) => k in User.properties), `only the schema's fields: ${keys.join(', ')}`)
  t.match(created.json(), { email: 'lazy@example.com', name: 'Lazy' })
})
