import { eq, sql } from 'drizzle-orm'
import type { NodePgDatabase } from 'drizzle-orm/node-postgres'
import type { PgUpdateSetSource } from 'drizzle-orm/pg-core'
import { admins } from '../../db/schema/admins.ts'
import { authErrors } from './errors.ts'

type Db = Pick<NodePgDatabase<Record<string, unknown>>, 'insert' | 'select' | 'update' | 'delete' | 'execute'>

export type AdminRow = typeof admins.$inferSelect

/** What the API shows of an admin: never the hash. */
export interface AdminView {
  id: string
  email: string
  name: string
  confirmed: boolean
  pendingEmail: string | null
  createdAt: Date
  updatedAt: Date
}

export function adminView (row: AdminRow): AdminView {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    confirmed: row.confirmedAt !== null,
    pendingEmail: row.pendingEmail,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt
  }
}

/** The PostgreSQL error behind a drizzle error, if any. */
function pgError (err: unknown): { code?: string, constraint?: string } {
  const e = err as { code?: string, constraint?: string, cause?: unknown }
  return e.code === undefined && e.cause !== undefined ? pgError(e.cause) : e
}

/** Unique violations of the admins table become 409s naming the field; anything else is rethrown. */
export function conflictError (err: unknown): Error {
  const { code, constraint } = pgError(err)
  if (code === '23505' && constraint === 'admins_email_lower_key') return new authErrors.EmailTaken()
  if (code === '23505' && constraint === 'admins_name_lower_key') return new authErrors.NameTaken()
  return err as Error
}

export async function insertAdmin (tx: Db, values: { email: string, name: string, passwordHash: string, confirmed: boolean }): Promise<AdminRow> {
  try {
    const [row] = await tx.insert(admins).values({
      email: values.email,
      name: values.name,
      passwordHash: values.passwordHash,
      confirmedAt: values.confirmed ? sql`now()` : null
    }).returning()
    return row as AdminRow
  } catch (err) {
    throw conflictError(err)
  }
}

export async function findAdminById (db: Db, id: string): Promise<AdminRow | null> {
  const [row] = await db.select().from(admins).where(eq(admins.id, id))
  return row ?? null
}

/** Updates an admin (and its updated_at); null when it no longer exists. */
export async function updateAdmin (tx: Db, id: string, values: PgUpdateSetSource<typeof admins>): Promise<AdminRow | null> {
  try {
    const [row] = await tx.update(admins).set({ ...values, updatedAt: sql`now()` }).where(eq(admins.id, id)).returning()
    return row ?? null
  } catch (err) {
    throw conflictError(err)
  }
}

/** True when another admin already uses this email (its current address). */
export async function emailInUse (db: Db, email: string, exceptId: string): Promise<boolean> {
  const { rows } = await db.execute(sql`SELECT 1 FROM admins WHERE lower(email) = lower(${email}) AND id <> ${exceptId}`)
  return rows.length > 0
}

/** Deletes an admin: sessions and tokens go with it (cascade); users it created keep existing with created_by null. */
export async function deleteAdmin (tx: Db, id: string): Promise<boolean> {
  const rows = await tx.delete(admins).where(eq(admins.id, id)).returning({ id: admins.id })
  return rows.length === 1
}
