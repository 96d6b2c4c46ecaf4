/** Who acts, for the audit log and the rules that depend on it: the authenticated admin, its session, the request. */
export interface Actor {
  adminId: string
  sessionId: string
  requestId: string
  /** The client's address (request.ip: the socket's peer, or what TRUST_PROXY trusts). */
  ip: string
}
