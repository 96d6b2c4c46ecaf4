import type { FastifyInstance } from 'fastify'

export const FORM = 'application/x-www-form-urlencoded'

/**
 * Lets the routes of one plugin context (one route file) take
 * application/x-www-form-urlencoded bodies, parsed into an object of strings:
 * the pages' forms (password reset, invitations) and OAuth's token endpoint.
 * Every other route takes JSON only.
 */
export function acceptForms (app: FastifyInstance): void {
  app.addContentTypeParser(FORM, { parseAs: 'string' }, (_request, body, done) => {
    const fields: Record<string, string> = {}
    for (const [k, v] of new URLSearchParams(body as string)) fields[k] = v
    done(null, fields)
  })
}
