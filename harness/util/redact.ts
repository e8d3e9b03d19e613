/**
 * Credentials never leave the process in a URL: every URL that is stored
 * (manifest), printed or logged goes through `redactUrl` first.
 */

const MASK = '***';

/**
 * The URL with any user name and password removed (`http://u:p@h/db` -> `http://h/db`).
 * Also cleans strings that do not parse as URLs (a typo must not print the password):
 * everything between `//` and the last `@` before the host part is dropped.
 * Query parameters that look like secrets (password, token, ...) are masked.
 */
export function redactUrl(url: string): string {
  let u: URL | null = null;
  try {
    u = new URL(url);
  } catch {
    u = null;
  }
  if (u && u.host) {
    u.username = '';
    u.password = '';
    for (const k of [...u.searchParams.keys()]) if (SECRET_PARAM.test(k)) u.searchParams.set(k, MASK);
    // a stray '@' left in path or query may still be part of a mistyped password
    return redactInText(u.toString());
  }
  // no scheme (`user:pw@host/db`): whatever precedes the last '@' may be a login
  if (!url.includes('://') && url.includes('@')) return url.slice(url.lastIndexOf('@') + 1);
  return redactInText(url);
}

const SECRET_PARAM = /^(p(ass(word)?|wd)?|u(ser(name)?)?|token|secret|auth.*|api[_-]?key|key)$/i;

/**
 * Removes userinfo from every URL-like piece of a free text (error messages of
 * libraries may quote the URL they were given).
 */
export function redactInText(text: string): string {
  // scheme://...@: everything up to the last '@' of the token goes (an unencoded '/', '?' or '#'
  // in a password would otherwise end the userinfo early and leak the rest)
  return text
    .replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/)\S*@/g, '$1')
    .replace(/([?&](?:p|pass|password|pwd|u|user|username|token|secret|api[_-]?key|key|auth[^=&\s]*)=)[^&#\s]*/gi, `$1${MASK}`);
}
