import { renameSync, writeFileSync, rmSync } from 'node:fs';

/**
 * Replaces `path` with `data` so readers see the old file or the new one,
 * never half of either: write a sibling temporary file, then rename.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode?: number): void {
  const tmp = `${path}.tmp${process.pid}`;
  try {
    writeFileSync(tmp, data, mode === undefined ? undefined : { mode });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** JSON document, pretty-printed, replaced atomically. */
export function writeJsonAtomic(path: string, doc: unknown): void {
  writeFileAtomic(path, JSON.stringify(doc, null, 2) + '\n');
}
