import { escapeHtml } from '../infra/html.ts'
import type { EmailTemplate } from './repository.ts'

/** A rendered email, ready for a transport. */
export interface Message {
  to: string
  subject: string
  text: string
  html: string
  /** The link the email carries (also inside text and html); the log transport prints it on its own. */
  link: string
}

interface TemplateText {
  subject: string
  /** Path of the page the link opens, below PUBLIC_URL. */
  path: string
  /** False for a notice whose link carries no token (default true). */
  token?: false
  /** What the email asks for, one sentence (given the row's data: a notice names what it is about). */
  intro: string | ((data: Record<string, unknown>) => string)
  action: string
  /** What to do when the email was not expected. */
  ignore: string
}

const TEMPLATES: Record<EmailTemplate, TemplateText> = {
  confirm_account: {
    subject: 'Confirm your Roster account',
    path: '/auth/confirm',
    intro: 'Please confirm your Roster account by opening the link below.',
    action: 'Confirm my account',
    ignore: 'If you did not create an account, ignore this email; nothing happens without the link.'
  },
  confirm_email: {
    subject: 'Confirm your new email address',
    path: '/auth/confirm',
    intro: 'Please confirm that this is the new email address of your Roster account by opening the link below.',
    action: 'Confirm this address',
    ignore: 'If you did not ask for this change, ignore this email; your address stays as it was.'
  },
  reset_password: {
    subject: 'Reset your Roster password',
    path: '/auth/password/reset',
    intro: 'Someone (hopefully you) asked to reset the password of your Roster account. Open the link below to choose a new one.',
    action: 'Choose a new password',
    ignore: 'If you did not ask for this, ignore this email; your password stays as it was.'
  },
  register_existing: {
    subject: 'Someone tried to register with your address',
    path: '/auth/password/reset',
    intro: 'Someone tried to create a Roster account with this email address, which already has one: yours. If it was you, log in with your password, or, if you forgot it, choose a new one by opening the link below (valid for an hour).',
    action: 'Choose a new password',
    ignore: 'If it was not you, ignore this email: no account was created, and yours is unchanged.'
  },
  invitation: {
    subject: 'You are invited to Roster',
    path: '/auth/invitations/accept',
    intro: 'You are invited to become an admin of Roster. Open the link below within 72 hours to choose your name and password.',
    action: 'Accept the invitation',
    ignore: 'If you did not expect this, ignore this email; no account is made without the link.'
  },
  webhook_disabled: {
    subject: 'A Roster webhook endpoint was disabled',
    path: '/apidocs',
    token: false,
    intro: (data) => `Every delivery to the webhook endpoint ${String(data.url)} (id ${String(data.webhookId)}) failed for ${String(data.hours)} hours, so Roster disabled it. Its undelivered events are kept: fix the receiver, then re-enable it with PATCH /webhooks/${String(data.webhookId)} and {"enabled": true}; GET /webhooks/${String(data.webhookId)}/deliveries shows what the receiver answered.`,
    action: 'Open the API documentation',
    ignore: 'You get this email as an owner of Roster.'
  }
}

/** Raised for an outbox row that cannot become an email (unknown template, missing token): never retried. */
export class TemplateError extends Error {
  override name = 'TemplateError'
}

/**
 * Renders an outbox row into subject, text and HTML parts. `publicUrl` is the
 * base of the link (no trailing slash); user-supplied values are escaped in HTML.
 */
export function renderEmail (template: string, to: string, data: Record<string, unknown>, publicUrl: string): Message {
  const t = Object.hasOwn(TEMPLATES, template) ? TEMPLATES[template as EmailTemplate] : undefined
  if (t === undefined) throw new TemplateError(`unknown email template ${JSON.stringify(template)}`)
  if (t.token !== false && (typeof data.token !== 'string' || data.token === '')) throw new TemplateError('the email has no token (already sent or failed?)')
  const name = typeof data.name === 'string' && data.name.trim() !== '' ? data.name.trim() : 'there'
  const link = t.token === false ? `${publicUrl}${t.path}` : `${publicUrl}${t.path}?token=${encodeURIComponent(data.token as string)}`
  const intro = typeof t.intro === 'string' ? t.intro : t.intro(data)

  const text = [
    `Hello ${name},`,
    '',
    intro,
    '',
    link,
    '',
    t.ignore,
    '',
    '-- ',
    'Roster'
  ].join('\n')

  const html = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(t.subject)}</title></head>
<body style="font-family: system-ui, sans-serif; line-height: 1.5; color: #222;">
<p>Hello ${escapeHtml(name)},</p>
<p>${escapeHtml(intro)}</p>
<p><a href="${escapeHtml(link)}" style="display: inline-block; padding: 0.6em 1.2em; background: #2456d6; color: #fff; text-decoration: none; border-radius: 4px;">${escapeHtml(t.action)}</a></p>
<p>Or copy this address into your browser:<br><a href="${escapeHtml(link)}">${escapeHtml(link)}</a></p>
<p style="color: #666;">${escapeHtml(t.ignore)}</p>
<p style="color: #666;">Roster</p>
</body>
</html>
`
  return { to, subject: t.subject, text, html, link }
}
