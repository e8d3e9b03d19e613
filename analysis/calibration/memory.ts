/**
 * Memory in use, measured: what the bulk (first) pass of a pre-copy
 * migration sent. QEMU skips zero pages, so a 128 MiB guest sends 77-125
 * MiB depending on what it touched (DESIGN.md); the configured size is the
 * wrong `mu` for the duration models. The first bitmap sync after the bulk
 * pass bumps dirty-sync-count from 1 to 2: the bytes sent by then are the
 * non-zero memory (plus what was re-dirtied and re-sent in that pass, which
 * is nothing in the bulk pass: every page is sent once).
 */

/** One query-migrate answer as stored in samples/migration_progress.jsonl (fields used here). */
export interface ProgressPoint {
  /** Harness time, epoch ms. */
  tMs: number;
  transferred: number | null;
  remaining: number | null;
  dirtySyncCount: number | null;
  /** ram.total and ram.duplicate (zero pages, counted as they are scanned): recorded since schema 2. */
  total?: number | null;
  zeroPages?: number | null;
  pageSize?: number | null;
}

export interface MemoryInUse {
  /** Bytes of non-zero memory (the bulk pass). */
  bytes: number;
  /** How it was found, and its resolution (one sampling interval of throughput). */
  method: 'zero-pages' | 'bulk-pass' | 'completed-in-bulk-pass';
  uncertaintyBytes: number;
}

/**
 * From the progress samples of one migration (any order). Null when the
 * samples do not show the end of the bulk pass (too few, or a migration
 * that failed in its first pass).
 */
export function memoryInUse(
  points: readonly ProgressPoint[],
  completed: { transferred: number | null; passes: number | null } | null = null,
): MemoryInUse | null {
  const pts = points.filter((p) => p.transferred !== null && p.dirtySyncCount !== null).sort((a, b) => a.tMs - b.tMs);
  if (completed && completed.passes !== null && completed.passes <= 1 && completed.transferred !== null) {
    // converged in the bulk pass (an idle guest): everything sent was the memory in use
    return { bytes: completed.transferred, method: 'completed-in-bulk-pass', uncertaintyBytes: 0 };
  }
  const i = pts.findIndex((p) => (p.dirtySyncCount ?? 0) >= 2);
  if (i <= 0) return null;
  const before = pts[i - 1];
  const after = pts[i];
  if ((before.dirtySyncCount ?? 0) !== 1) return null;
  // exact when the zero-page count of the finished bulk pass is there: every page was scanned once
  if (after.total && after.zeroPages !== null && after.zeroPages !== undefined) {
    return { bytes: after.total - after.zeroPages * (after.pageSize ?? 4096), method: 'zero-pages', uncertaintyBytes: 0 };
  }
  // else bracket the sync between the two samples: at least what was sent before it; at most that plus
  // what was left (remaining also counts zero pages not yet scanned) and no more than was sent by the next
  const low = before.transferred!;
  const high = Math.min(after.transferred!, low + (before.remaining ?? 0));
  return { bytes: (low + high) / 2, method: 'bulk-pass', uncertaintyBytes: (high - low) / 2 };
}
