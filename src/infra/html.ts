import type { FastifyReply, FastifyRequest } from 'fastify'

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string)
}

/**
 * HTML pages (the emailed links open them in a browser): no script and no
 * style at all, so the strictest Content-Security-Policy holds.
 */
const CSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/** True when the client asks for HTML (a browser opening a link or posting a form) rather than JSON. */
export function wantsHtml (request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? ''
  const html = accept.indexOf('text/html')
  if (html === -1) return false
  const json = accept.search(/application\/(problem\+)?json/)
  return json === -1 || html < json
}

export function sendHtml (reply: FastifyReply, status: number, page: string): FastifyReply {
  return reply.code(status)
    .header('content-security-policy', CSP)
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store')
    .header('x-frame-options', 'DENY')
    .type('text/html; charset=utf-8')
    .send(page)
}
