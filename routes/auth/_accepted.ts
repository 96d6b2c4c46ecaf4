import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Accepted, EmailOnly } from '../../schemas/admins.ts'
import { problems } from '../../schemas/problem.ts'

type App = Parameters<FastifyPluginAsyncTypebox>[0]

/**
 * A public POST that takes an email address and always answers 202 with
 * `detail`, whether or not an account has it (no account enumeration): `start`
 * begins the work (an email), which the answer does not wait for.
 * (`_`: not a route file, autoload skips it.)
 */
export function acceptEmail (app: App, path: string, doc: { summary: string, description: string }, detail: string, start: (email: string) => void): void {
  app.post(path, {
    config: { public: true },
    schema: { ...doc, body: EmailOnly, response: { 202: Accepted, ...problems(429) } }
  }, async (request, reply) => {
    start(request.body.email)
    return await reply.code(202).send({ status: 'accepted' as const, detail })
  })
}
