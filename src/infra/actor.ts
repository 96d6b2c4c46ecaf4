/** Who acts, for the audit log and the rules that depend on it: the authenticated admin, its session, the request. */
export interface Actor {
  adminId: string
  sessionId: string
  requestId: string
}
