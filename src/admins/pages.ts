import { escapeHtml } from '../infra/html.ts'
import { PASSWORD_MAX, PASSWORD_MIN } from '../../schemas/admins.ts'

/**
 * The few HTML pages behind emailed links (sent by src/infra/html.ts's
 * sendHtml). The reset page is a plain form posting
 * application/x-www-form-urlencoded to its own path. Everything interpolated
 * is HTML-escaped.
 */
function page (title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · Roster</title>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>
`
}

export function confirmedPage (purpose: 'account' | 'email', email: string): string {
  return purpose === 'account'
    ? page('Account confirmed', `<p>Your Roster account <strong>${escapeHtml(email)}</strong> is confirmed. You can now log in (POST /auth/login).</p>`)
    : page('Email address confirmed', `<p><strong>${escapeHtml(email)}</strong> is now the email address of your Roster account.</p>`)
}

export function errorPage (title: string, detail: string): string {
  return page(title, `<p>${escapeHtml(detail)}</p>`)
}

/** The form behind the reset link: the token travels in a hidden field, never in the URL it posts to. */
export function resetFormPage (token: string, problem?: string): string {
  const error = problem === undefined ? '' : `<p role="alert"><strong>${escapeHtml(problem)}</strong></p>\n`
  return page('Choose a new password', `${error}<form method="post" action="reset">
<input type="hidden" name="token" value="${escapeHtml(token)}">
<p><label for="password">New password (${PASSWORD_MIN} to ${PASSWORD_MAX} characters; not a common password, nor your email or name)</label><br>
<input type="password" id="password" name="password" required minlength="${PASSWORD_MIN}" maxlength="${PASSWORD_MAX}" autocomplete="new-password" autofocus></p>
<p><button type="submit">Set the new password</button></p>
</form>
<p>Setting it ends every session of the account: log in again afterwards.</p>`)
}

export function resetDonePage (): string {
  return page('Password changed', '<p>Your password is changed and every session of your account has ended. Log in again with the new password.</p>')
}

/** The form behind an invitation link: the token in a hidden field, a name and a password. */
export function invitationFormPage (token: string, problem?: string): string {
  const error = problem === undefined ? '' : `<p role="alert"><strong>${escapeHtml(problem)}</strong></p>\n`
  return page('Accept your invitation', `${error}<form method="post" action="accept">
<input type="hidden" name="token" value="${escapeHtml(token)}">
<p><label for="name">Name (3 to 32 letters, digits, <code>.</code>, <code>_</code> or <code>-</code>)</label><br>
<input type="text" id="name" name="name" required minlength="3" maxlength="32" autocomplete="username" autofocus></p>
<p><label for="password">Password (${PASSWORD_MIN} to ${PASSWORD_MAX} characters; not a common password, nor your email or name)</label><br>
<input type="password" id="password" name="password" required minlength="${PASSWORD_MIN}" maxlength="${PASSWORD_MAX}" autocomplete="new-password"></p>
<p><button type="submit">Become an admin</button></p>
</form>`)
}

export function acceptedPage (email: string, role: string): string {
  return page('Welcome to Roster', `<p>Your account <strong>${escapeHtml(email)}</strong> is ready, with the role <strong>${escapeHtml(role)}</strong>. You can now log in (POST /auth/login).</p>`)
}
