import { Readable } from 'node:stream'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { bearer } from '../../schemas/common.ts'
import { problems } from '../../schemas/problem.ts'
import { CSV, IMPORT_MAX_ROWS, ImportQuery, ImportReport, NDJSON, UserImportRow } from '../../schemas/users.ts'
import { requireUtf8 } from '../../src/infra/body.ts'
import { errors } from '../../src/infra/errors.ts'
import type { RowValidator, TransferFormat } from '../../src/users/transfer.ts'
import { actorOf } from '../../plugins/auth.ts'

/** The media types an import takes: NDJSON (and its other names) or CSV. */
const NDJSON_TYPES = [NDJSON, 'application/ndjson', 'application/jsonl', 'application/x-jsonlines']

/** The format a Content-Type names (UTF-8 only), or a 415. */
function importFormat (contentType: string | undefined): TransferFormat {
  const type = ((contentType ?? '').split(';')[0] as string).trim().toLowerCase()
  if (contentType !== undefined) requireUtf8(contentType)
  if (type === CSV) return 'csv'
  if (NDJSON_TYPES.includes(type)) return 'ndjson'
  throw new errors.UnsupportedMediaType(`An import is ${NDJSON} (one JSON object per line) or ${CSV} (with a header row), not ${type === '' ? 'an empty body' : type.slice(0, 60)}`)
}

/** The format an Accept header asks for (NDJSON when it does not say), or a 406. */
function exportFormat (accept: string | undefined): TransferFormat {
  const ranges = (accept ?? '*/*').toLowerCase().split(',').map((r) => (r.split(';')[0] as string).trim())
  for (const range of ranges) {
    if (range === CSV || range === 'text/*') return 'csv'
    if (NDJSON_TYPES.includes(range) || range === '*/*' || range === 'application/*') return 'ndjson'
  }
  throw new errors.NotAcceptable(`An export is ${NDJSON} or ${CSV}: ask for one of them in Accept`)
}

/** /users/import and /users/export: bulk transfer of users, streamed both ways (registered by ./index.ts; `_`: autoload skips it). */
const plugin: FastifyPluginAsyncTypebox = async (app) => {
  const { users, config } = app
  // The body reaches the handler as the request stream itself: read a row at a time, never buffered whole.
  app.addContentTypeParser([...NDJSON_TYPES, CSV], (_request, payload, done) => { done(null, payload) })

  app.post('/import', {
    config: { permission: 'users:write' },
    bodyLimit: config.IMPORT_MAX_BYTES,
    schema: {
      tags: ['users'],
      summary: 'Import users from NDJSON or CSV',
      description: `The body is \`${NDJSON}\` (one user per line, the fields of POST /users) or \`${CSV}\` (a header row: email, name, active), at most ${IMPORT_MAX_ROWS} rows and IMPORT_MAX_BYTES bytes. ` +
        'Every row is validated; valid ones are created, those whose email is taken (by a user or an earlier row) skipped as duplicates; the report lists invalid and skipped rows by line number. ' +
        'One transaction: a failure (or more rows than allowed) imports nothing. `dryRun=true` validates and reports only. An export imports as it is (its id and timestamps are ignored).',
      security: bearer,
      consumes: [NDJSON, CSV],
      querystring: ImportQuery,
      response: { 200: ImportReport, ...problems(413, 415) }
    }
  }, async (request) => {
    const format = importFormat(request.headers['content-type'])
    const length = Number(request.headers['content-length'] ?? 0)
    if (length > config.IMPORT_MAX_BYTES) throw new errors.BodyTooLarge(`An import takes at most ${config.IMPORT_MAX_BYTES} bytes (IMPORT_MAX_BYTES)`)
    const validate = (request as FastifyRequest).compileValidationSchema(UserImportRow) as unknown as RowValidator
    // With a Content-Type (else a 415 above), Fastify hands every body to the parser: the request stream.
    return await users.transfer.import(request.body as Readable, { format, dryRun: request.query.dryRun, maxBytes: config.IMPORT_MAX_BYTES, validate }, actorOf(request))
  })

  app.get('/export', {
    config: { permission: 'users:read' },
    schema: {
      tags: ['users'],
      summary: 'Export every user as NDJSON or CSV',
      description: `Accept decides: \`${NDJSON}\` (the default: one user per line, as GET /users shows them) or \`${CSV}\` (a header row, then one user per record). ` +
        'Oldest first, from one consistent snapshot, streamed with constant memory. The file imports as it is with POST /users/import.',
      security: bearer,
      produces: [NDJSON, CSV],
      response: {
        200: {
          description: 'Every user',
          content: { [NDJSON]: { schema: { type: 'string' } }, [CSV]: { schema: { type: 'string' } } }
        },
        ...problems(406)
      }
    }
  }, async (request, reply) => {
    const format = exportFormat(request.headers.accept)
    reply.type(format === 'csv' ? `${CSV}; charset=utf-8` : `${NDJSON}; charset=utf-8`)
    reply.header('content-disposition', `attachment; filename="users.${format === 'csv' ? 'csv' : 'ndjson'}"`)
    return await reply.send(Readable.from(users.transfer.export(format), { objectMode: false }))
  })
}
export default plugin
