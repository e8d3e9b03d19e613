import { execa, type ResultPromise } from 'execa';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Runs the real CLI as a user would. */
export function migbench(args: string[], opts: { env?: Record<string, string> } = {}): ResultPromise<{ reject: false; cwd: string }> {
  return execa('node', [`${ROOT}bin/migbench.js`, ...args], { reject: false, cwd: ROOT, env: opts.env }) as ResultPromise<{
    reject: false;
    cwd: string;
  }>;
}

/**
 * `migbench run ...` as migbench() does, plus how long the process lived after printing its run
 * directory on stdout (its last line): a finished command ends at once, and a pending timer left
 * in its teardown held `run --inventory` open for up to 30 s. null when no such line came.
 */
export async function migbenchRun(args: string[]): Promise<{ r: Awaited<ReturnType<typeof migbench>>; lingerMs: number | null }> {
  const child = migbench(args);
  let printed: number | null = null;
  child.stdout?.on('data', (d: Buffer) => {
    if (printed === null && String(d).includes('run directory: ')) printed = Date.now();
  });
  const r = await child;
  return { r, lingerMs: printed === null ? null : Date.now() - printed };
}

export async function netnsList(): Promise<string[]> {
  const r = await execa('ip', ['netns', 'list'], { reject: false });
  return String(r.stdout)
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean);
}

export async function linksNamedMb(): Promise<string[]> {
  const r = await execa('ip', ['-o', 'link'], { reject: false });
  return String(r.stdout)
    .split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0])
    .filter((n): n is string => !!n && n.startsWith('mb-'));
}

/** Polls a condition (an observable state, not a fixed sleep) with a generous bound. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
