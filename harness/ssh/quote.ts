/**
 * The one place where remote command lines are built. Remote sshd hands the
 * command string to the login shell (`$SHELL -c`), so every argument is
 * single-quoted for POSIX sh (bash, dash, zsh); spec text is never pasted into
 * a shell string.
 */
import { UserError } from '../util/errors.ts';

/** Characters that need no quoting anywhere in a POSIX shell word (`~` and `=` are left out: tilde and assignment forms). */
const SAFE = /^[A-Za-z0-9_/.,:@%+-]+$/;

/** Quotes one argument for POSIX sh. A NUL byte cannot be passed through any shell or argv: refused. */
export function shQuote(arg: string): string {
  if (typeof arg !== 'string') throw new TypeError(`shQuote: expected a string, got ${typeof arg}`);
  if (arg.includes('\0'))
    throw new UserError(`a remote command argument contains a NUL byte, which cannot be passed to a program: ${JSON.stringify(arg)}`);
  if (SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Command line for argv (argv[0] is the program), optionally with environment
 * variables set through `env` so no shell syntax is involved.
 */
export function shJoin(argv: readonly string[], env?: Readonly<Record<string, string>>): string {
  if (argv.length === 0) throw new Error('shJoin: empty argv');
  const prefix: string[] = [];
  if (env && Object.keys(env).length) {
    prefix.push('env', '--');
    for (const [k, v] of Object.entries(env)) {
      if (!ENV_NAME.test(k)) throw new UserError(`invalid environment variable name for a remote command: ${JSON.stringify(k)}`);
      prefix.push(`${k}=${v}`);
    }
    if (argv[0].includes('=')) throw new UserError(`remote program name contains '=' (env would take it for a variable): ${argv[0]}`);
  }
  return [...prefix, ...argv].map(shQuote).join(' ');
}
