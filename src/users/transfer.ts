import { randomUUID } from 'node:crypto'
import { createInterface } from 'node:readline'
import { Transform, type Readable } from 'node:stream'
import type { ErrorObject } from 'ajv'
import type { CsvError, parse as CsvParse } from 'csv-parse'
import { IMPORT_MAX_ROWS, IMPORT_REPORT_LIMIT, UserImportRow, type ImportReportView, type UserImportRowBody, type UserRow } from '../../schemas/users.ts'
import type { AuditService } from '../audit/service.ts'
import type { Actor } from '../infra/actor.ts'
import { transaction, type Database } from '../infra/database.ts'
import { errors } from '../infra/errors.ts'
import { issues } from '../infra/problem.ts'
import type { UsersRepository } from './repository.ts'

export type TransferFormat = 'ndjson' | 'csv'

/** A compiled validator of a row (the route's own ajv: the same formats and coercion as the API). */
export type RowValidator = ((row: unknown) => boolean) & { errors?: ErrorObject[] | null }

/** Rows inserted by one statement of an import. */
export const IMPORT_BATCH = 1000
/** Users read by one statement of an export. */
export const EXPORT_PAGE = 1000

/** The columns of a CSV export, and those a CSV import may have. */
export const CSV_COLUMNS = ['id', 'email', 'name', 'active', 'createdAt', 'updatedAt', 'createdBy'] as const
const IMPORT_COLUMNS = new Set(Object.keys(UserImportRow.properties))

type Item = { line: number, value: Record<string, unknown> } | { line: number, error: string }

/** NDJSON: one JSON object per line; blank lines are skipped (their numbers still count). */
async function * ndjsonItems (input: Readable): AsyncGenerator<Item> {
  let line = 0
  const lines = createInterface({ input, crlfDelay: Infinity })
  try {
    for await (const text of lines) {
      line++
      if (text.trim() === '') continue
      try {
        const value: unknown = JSON.parse(text)
        if (value === null || typeof value !== 'object' || Array.isArray(value)) yield { line, error: 'is not a JSON object' }
        else yield { line, value: value as Record<string, unknown> }
      } catch (err) {
        yield { line, error: `is not valid JSON: ${(err as Error).message}` }
      }
    }
  } finally {
    // Left early too (a 413, a failed batch): the interface lets go of the body.
    lines.close()
  }
}

/**
 * CSV (RFC 4180, a header row naming the columns): each record as an object of
 * its non-empty fields (strings, `active` a boolean when it says true or false). A record
 * with another number of fields than the header is an invalid row; an unknown
 * column, or CSV that cannot be read on (an unclosed quote), fails the import.
 */
async function * csvItems (input: Readable, parseCsv: typeof CsvParse): AsyncGenerator<Item> {
  const parser = input.pipe(parseCsv({ bom: true, info: true, relax_column_count: true, skip_empty_lines: true }))
  input.on('error', (err) => parser.destroy(err))
  let header: string[] | null = null
  // A record is named by its first line: the one after the previous record's last, past the blank lines between.
  let ended = 0
  let blanks = 0
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[], info: { lines: number, empty_lines: number } }>) {
      const line = ended + 1 + info.empty_lines - blanks
      ended = info.lines
      blanks = info.empty_lines
      if (header === null) {
        header = record.map((c) => c.trim())
        const unknown = header.filter((c) => !IMPORT_COLUMNS.has(c))
        if (unknown.length > 0) throw new errors.BadRequest(`Unknown CSV column ${JSON.stringify(unknown[0]?.slice(0, 40))}: the columns are email, name and active (and an export's ${CSV_COLUMNS.filter((c) => !['email', 'name', 'active'].includes(c)).join(', ')}, ignored)`)
        if (new Set(header).size !== header.length) throw new errors.BadRequest('A CSV column is named twice in the header')
        if (!header.includes('email')) throw new errors.BadRequest('The CSV header has no email column')
        continue
      }
      if (record.length !== header.length) {
        yield { line, error: `has ${record.length} fields, the header ${header.length}` }
        continue
      }
      const value: Record<string, unknown> = {}
      header.forEach((column, i) => { if (record[i] !== '') value[column] = record[i] })
      // CSV has only text: `active` is true or false in words (the validator coerces nothing); anything else stays text and is refused.
      if (value.active === 'true' || value.active === 'false') value.active = value.active === 'true'
      yield { line, value }
    }
  } catch (err) {
    if ((err as CsvError).code?.startsWith('CSV_') === true) throw new errors.BadRequest(`The CSV cannot be read on at line ${(err as CsvError & { lines: number }).lines}: ${(err as Error).message}`)
    throw err
  }
}

/** Fails the stream once more than `max` bytes came (413): the import's own body limit. */
function byteLimit (max: number): Transform {
  let seen = 0
  return new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      seen += chunk.length
      if (seen > max) callback(new errors.BodyTooLarge(`An import takes at most ${max} bytes (IMPORT_MAX_BYTES)`))
      else callback(null, chunk)
    }
  })
}

/** Raised inside a dry run's transaction to roll it back, report kept. */
class DryRun extends Error {}

/** Bulk import and export of users: streamed, in batches, audited, with webhook events. */
export function createTransfer (db: Database, repository: UsersRepository, audit: Pick<AuditService, 'record'>) {
  return {
    /**
     * Imports users from an NDJSON or CSV stream in one transaction: every row
     * validated, valid rows inserted IMPORT_BATCH at a time (duplicates skipped),
     * one audit event for the import besides each user's. A dry run does the
     * same and rolls back. More than IMPORT_MAX_ROWS rows or `maxBytes` bytes: 413, nothing imported.
     */
    async import (body: Readable, opts: { format: TransferFormat, dryRun: boolean, maxBytes: number, validate: RowValidator }, actor: Actor): Promise<ImportReportView> {
      const importId = randomUUID()
      const report: ImportReportView = { dryRun: opts.dryRun, rows: 0, created: 0, duplicates: 0, invalid: 0, skipped: [], errors: [] }
      const input = body.pipe(byteLimit(opts.maxBytes))
      body.on('error', (err) => input.destroy(err))
      // An error of the body (its client gone) while no reader listens — before the reading starts (once the
      // transaction has begun) or after it has stopped (a 413, a failed batch) — is kept here, not thrown at the
      // process by the stream's pipe; one from before fails the import when the reading would start.
      let early: Error | null = null
      input.on('error', (err) => { early ??= err })
      // Loaded by the first CSV import: an instance that never imports CSV does not hold the parser.
      const parseCsv = opts.format === 'csv' ? (await import('csv-parse')).parse : undefined
      const invalid = (line: number, found: Array<{ path: string, message: string }>): void => {
        report.invalid++
        if (report.errors.length < IMPORT_REPORT_LIMIT) report.errors.push({ line, errors: found })
      }
      try {
        await transaction(db, async (tx) => {
          type Row = { email: string, name: string | null, active: boolean, line: number }
          let batch: Row[] = []
          // One batch in flight while the next is read and validated: PostgreSQL and this process work at once.
          let inFlight: Promise<void> = Promise.resolve()
          const insert = async (rows: Row[]): Promise<void> => {
            const created = await repository.importBatch(tx, rows, actor, importId)
            for (const row of rows) {
              if (created.delete(row.email.toLowerCase())) {
                report.created++
              } else {
                report.duplicates++
                if (report.skipped.length < IMPORT_REPORT_LIMIT) report.skipped.push({ line: row.line, email: row.email })
              }
            }
          }
          const flush = async (): Promise<void> => {
            await inFlight
            if (batch.length === 0) return
            inFlight = insert(batch)
            // Settled here, awaited at the next flush: a failure is not left unhandled meanwhile.
            inFlight.catch(() => {})
            batch = []
          }
          if (early !== null) throw early
          for await (const item of parseCsv !== undefined ? csvItems(input, parseCsv) : ndjsonItems(input)) {
            if (++report.rows > IMPORT_MAX_ROWS) throw new errors.BodyTooLarge(`An import takes at most ${IMPORT_MAX_ROWS} rows: split the file`)
            if ('error' in item) {
              invalid(item.line, [{ path: '', message: item.error }])
            } else if (!opts.validate(item.value)) {
              invalid(item.line, issues(opts.validate.errors as ErrorObject[], ''))
            } else {
              const row = item.value as UserImportRowBody
              batch.push({ email: row.email, name: row.name ?? null, active: row.active ?? true, line: item.line })
              if (batch.length === IMPORT_BATCH) await flush()
            }
          }
          await flush()
          await inFlight
          await audit.record(tx, {
            actor: { type: actor.type, id: actor.id },
            action: 'user.import',
            targetType: 'import',
            targetId: importId,
            requestId: actor.requestId,
            changes: { format: opts.format, rows: report.rows, created: report.created, duplicates: report.duplicates, invalid: report.invalid }
          })
          if (opts.dryRun) throw new DryRun()
        })
      } catch (err) {
        if (!(err instanceof DryRun)) throw err
      }
      return report
    },

    /**
     * Every user, oldest first, as NDJSON lines or CSV records, read EXPORT_PAGE
     * at a time in one read-only snapshot (a consistent export), pulled by the
     * consumer (backpressure: constant memory). Stopping early rolls back and frees the connection.
     */
    async * export (format: TransferFormat): AsyncGenerator<string> {
      const client = await db.connect()
      let done = false
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
        if (format === 'csv') yield CSV_COLUMNS.join(',') + '\r\n'
        const line = format === 'csv' ? csvLine : ndjsonLine
        let after: { key: string, id: string } | null = null
        for (;;) {
          const rows = await repository.exportPage(client, after, EXPORT_PAGE)
          if (rows.length > 0) yield rows.map(line).join('')
          if (rows.length < EXPORT_PAGE) break
          const last = rows[rows.length - 1] as UserRow & { _k: string }
          after = { key: last._k, id: last.id }
        }
        await client.query('COMMIT')
        done = true
      } finally {
        const failed = done ? undefined : await client.query('ROLLBACK').then(() => undefined, (err: Error) => err)
        client.release(failed)
      }
    }
  }
}

export type Transfer = ReturnType<typeof createTransfer>

/** A user as an export shows it: the API's fields, in a fixed order. */
function exported (u: UserRow): Record<typeof CSV_COLUMNS[number], unknown> {
  return { id: u.id, email: u.email, name: u.name, active: u.active, createdAt: u.createdAt, updatedAt: u.updatedAt, createdBy: u.createdBy }
}

const ndjsonLine = (u: UserRow): string => JSON.stringify(exported(u)) + '\n'

/** An RFC 4180 field: quoted when it holds a comma, a quote or a line break; null is empty. */
function csvField (value: unknown): string {
  const text = value === null ? '' : String(value)
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

const csvLine = (u: UserRow): string => Object.values(exported(u)).map(csvField).join(',') + '\r\n'
