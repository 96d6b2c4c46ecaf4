import SerializerSelector from '@fastify/fast-json-stringify-compiler'

/** The server's `serializerOpts`, as Fastify hands them to the factory. */
type SerializerOptions = Parameters<ReturnType<typeof SerializerSelector>>[1]
interface Route { schema: unknown, method: string, url: string, httpStatus: string, contentType?: string }
type Serialize = (data: unknown) => string

/**
 * `schemaController.compilersFactory.buildSerializer`: Fastify's own response
 * serializer (fast-json-stringify), each compiled on its first use. A route
 * declares a schema for every status it may answer, about five each, most of
 * which an instance never sends: compiled at start, they would hold several MB
 * of generated code. tests compile them all (test/schemas.test.ts).
 */
export function buildSerializer (externalSchemas: Record<string, unknown>, options?: SerializerOptions): (route: Route) => Serialize {
  const compile = SerializerSelector()(externalSchemas as never, options) as unknown as (route: Route) => Serialize
  return (route) => {
    let serialize: Serialize | undefined
    return (data) => (serialize ??= compile(route))(data)
  }
}
