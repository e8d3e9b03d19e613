import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { shJoin, shQuote } from '../../harness/ssh/quote.ts';
import { UserError } from '../../harness/util/errors.ts';
import { HOSTILE } from '../support/ssh-hostile.ts';

/** argv as received by a program run through `sh -c` with the quoted command line. */
function argvThroughSh(args: readonly string[]): string[] {
  const out = execFileSync('sh', ['-c', shJoin(['printf', '%s\\0', ...args])], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

describe('shQuote / shJoin', () => {
  it('passes every hostile string through sh -c unchanged, one argv element each', () => {
    expect(argvThroughSh(HOSTILE)).toEqual(HOSTILE);
    expect(existsSync('/tmp/mb-pwned-quote')).toBe(false);
  });

  it('passes each hostile string alone (empty argument kept)', () => {
    for (const h of HOSTILE) expect(argvThroughSh([h])).toEqual([h]);
  });

  it('also round-trips through bash and dash when present', () => {
    for (const shell of ['bash', 'dash']) {
      const out = execFileSync(shell, ['-c', shJoin(['printf', '%s\\0', ...HOSTILE])], { encoding: 'utf8' });
      expect(out.split('\0').slice(0, -1)).toEqual(HOSTILE);
    }
  });

  it('leaves plain words unquoted and quotes the rest', () => {
    expect(shQuote('qemu-system-x86_64')).toBe('qemu-system-x86_64');
    expect(shQuote('/var/lib/mb/img.qcow2')).toBe('/var/lib/mb/img.qcow2');
    expect(shQuote('')).toBe("''");
    expect(shQuote("it's")).toBe(`'it'\\''s'`);
    expect(shQuote('~')).toBe("'~'");
    expect(shQuote('a=b')).toBe("'a=b'");
  });

  it('refuses NUL bytes with a UserError', () => {
    expect(() => shQuote('a\0b')).toThrow(UserError);
    expect(() => shJoin(['echo', 'x\0'])).toThrow(/NUL/);
  });

  it('sets environment variables through env, refusing bad names', () => {
    const out = execFileSync('sh', ['-c', shJoin(['sh', '-c', 'printf "%s" "$MB_X"'], { MB_X: "$(id) 'q'" })], { encoding: 'utf8' });
    expect(out).toBe("$(id) 'q'");
    expect(() => shJoin(['true'], { 'A;B': '1' })).toThrow(UserError);
    expect(() => shJoin([])).toThrow();
  });
});
