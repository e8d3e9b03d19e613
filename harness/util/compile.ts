import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from './paths.ts';
import { run } from './exec.ts';

export interface CProgram {
  /** Output name, e.g. 'mb-delayfwd'. */
  name: string;
  /** Absolute paths of the C sources. */
  sources: string[];
  /** Headers the sources include: hashed so a change rebuilds, not passed to gcc. */
  headers?: string[];
  /** Link statically (for programs copied into the guest initramfs). */
  static?: boolean;
  /** Extra compiler/linker flags. */
  flags?: string[];
}

/**
 * Compiles a small C program with gcc, cached by a hash of its sources and
 * flags, and returns the binary's path. Rebuilt only when a source changes.
 */
export async function compileC(p: CProgram): Promise<string> {
  const h = createHash('sha256');
  for (const s of [...p.sources, ...(p.headers ?? [])]) h.update(readFileSync(s));
  h.update(JSON.stringify([p.static ?? false, p.flags ?? []]));
  const dir = cacheDir('bin');
  const out = join(dir, `${p.name}-${h.digest('hex').slice(0, 12)}`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.tmp${process.pid}`;
  const args = ['-O2', '-Wall', '-o', tmp, ...p.sources, ...(p.static ? ['-static'] : []), ...(p.flags ?? [])];
  await run('gcc', args);
  renameSync(tmp, out); // atomic: a concurrent build never sees a half-written binary
  return out;
}
