import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

/** Root of the migbench package (where package.json is). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Build products (compiled helpers, guest images), cached by content hash. */
export function cacheDir(...parts: string[]): string {
  const base = process.env.MIGBENCH_CACHE ?? join(PACKAGE_ROOT, '.cache');
  return join(base, ...parts);
}

/** Where testbed state files live; one file per testbed, so `down` works after kill -9. */
export function stateDir(): string {
  return process.env.MIGBENCH_STATE_DIR ?? '/run/migbench';
}
