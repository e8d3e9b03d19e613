/**
 * An error the user can fix (bad spec, missing tool, unreachable host).
 * The CLI prints only its message and exits with code 2; anything else is a
 * bug and is printed with its stack.
 */
export class UserError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/** Message of any thrown value, for logs. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
