import type { Pool } from 'pg'
import { createLister, type ListSpec, type Page, type PageQuery } from './paging.ts'

export interface AdminSummary {
  id: string
  email: string
  name: string
  confirmed: boolean
  createdAt: Date
}

/**
 * GET /auth/admins. Selects only what the API shows: the password hash is
 * never read. Each sort has its `(key, id)` index (db/schema/admins.ts).
 */
export const ADMINS_LIST: ListSpec = {
  name: 'admins',
  from: 'admins',
  columns: 'id, email, name, confirmed_at IS NOT NULL AS confirmed, created_at AS "createdAt"',
  id: 'id',
  sorts: {
    createdAt: { expr: 'created_at', type: 'timestamptz', key: 'created_at::text' },
    email: { expr: 'email', type: 'text' },
    name: { expr: 'name', type: 'text' }
  },
  defaultSort: 'createdAt',
  filters: {}
}

export function createAdminsListing (db: { $client: Pool }, secretKey: string) {
  const lister = createLister<AdminSummary>(ADMINS_LIST, secretKey)
  return {
    lister,
    list: async (query: PageQuery): Promise<Page<AdminSummary>> => await lister.page(db.$client, query)
  }
}
