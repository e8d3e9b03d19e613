/**
 * The bound on a cache of saved guests (this machine's, or a server's). A
 * saved guest is ~80 MB for a 128 MiB guest and one is made per key (image,
 * memory, MAC, QEMU, ...), so a lab's campaigns would fill /var/tmp over the
 * months. After a new one is made, the least recently used ones are removed
 * until the cache is under MIGBENCH_SAVED_GUESTS_MAX_MB. A saved guest is
 * "used" when a start finds it (its directory's mtime is set then); one used
 * within RECENT_MS is kept even over the bound, since a concurrent run may
 * be about to load it.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.ts';

/** Default bound (MiB): ~50 saved guests of 128 MiB guests. */
export const DEFAULT_SAVED_GUESTS_MAX_MB = 4096;
/** A saved guest found this recently is never removed (a start that found it may not have opened its stream yet). */
export const RECENT_MS = 10 * 60_000;
export const MAX_MB_ENV = 'MIGBENCH_SAVED_GUESTS_MAX_MB';

/** One complete saved guest in a cache. */
export interface CachedGuest {
  id: string;
  /** Size of its stream (guest.mig; meta.json is a few hundred bytes). */
  bytes: number;
  /** When a start last found it, or when it was made (epoch ms). */
  usedMs: number;
}

/** The bound from MIGBENCH_SAVED_GUESTS_MAX_MB (MiB, a positive number), in bytes. */
export function savedGuestsMaxBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[MAX_MB_ENV];
  if (raw === undefined || raw === '') return DEFAULT_SAVED_GUESTS_MAX_MB * 2 ** 20;
  const mb = Number(raw);
  if (!Number.isFinite(mb) || mb <= 0)
    throw new UserError(`${MAX_MB_ENV} must be a positive number of MiB (got "${raw}"); unset it for ${DEFAULT_SAVED_GUESTS_MAX_MB}`);
  return mb * 2 ** 20;
}

export interface EvictOptions {
  maxBytes: number;
  /** The saved guest just made or about to be used: never removed. */
  keep: string;
  nowMs: number;
  recentMs?: number;
}

/** Which saved guests to remove, least recently used first, until the rest fit under maxBytes. */
export function chooseEvictions(entries: readonly CachedGuest[], o: EvictOptions): CachedGuest[] {
  const recentMs = o.recentMs ?? RECENT_MS;
  let total = entries.reduce((s, e) => s + e.bytes, 0);
  const out: CachedGuest[] = [];
  const oldestFirst = [...entries].sort((a, b) => a.usedMs - b.usedMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const e of oldestFirst) {
    if (total <= o.maxBytes) break;
    if (e.id === o.keep || o.nowMs - e.usedMs < recentMs) continue;
    out.push(e);
    total -= e.bytes;
  }
  return out;
}

const MIB = 2 ** 20;

/** The line a run logs after removing saved guests (null when none was removed). */
export function evictionNote(
  where: string,
  entries: readonly CachedGuest[],
  removed: readonly CachedGuest[],
  maxBytes: number,
): string | null {
  if (!removed.length) return null;
  const freed = removed.reduce((s, e) => s + e.bytes, 0);
  const left = entries.reduce((s, e) => s + e.bytes, 0) - freed;
  const over = left > maxBytes ? `; still ${(left / MIB).toFixed(0)} MiB: the rest was used in the last ${RECENT_MS / 60_000} min` : '';
  return (
    `saved guests ${where}: removed ${removed.length} least recently used (${(freed / MIB).toFixed(0)} MiB) ` +
    `to stay under ${(maxBytes / MIB).toFixed(0)} MiB (${MAX_MB_ENV})${over}`
  );
}

/**
 * Prints the server's clock ("now" epoch s), then each complete saved guest of cache $1 as "id bytes mtime":
 * its stream's size and its directory's mtime (epoch s, the server's clock too). Makers' temporary
 * directories (.tmp-*) are not listed. GNU stat, as on the servers.
 */
export const LIST_SCRIPT =
  'echo "now $(date +%s)"; cd -- "$1" 2>/dev/null || exit 0; for d in */; do d=${d%/}; ' +
  'test -s "$d/meta.json" && test -f "$d/guest.mig" || continue; ' +
  'printf "%s %s %s\\n" "$d" "$(stat -c %s -- "$d/guest.mig")" "$(stat -c %Y -- "$d")"; done';

/** LIST_SCRIPT's output (nowMs null without its clock line); other lines are skipped. */
export function parseCacheListing(out: string): { nowMs: number | null; entries: CachedGuest[] } {
  let nowMs: number | null = null;
  const entries: CachedGuest[] = [];
  for (const line of out.split('\n')) {
    const now = /^now (\d+)$/.exec(line.trim());
    if (now) nowMs = Number(now[1]) * 1000;
    const m = /^(\S+) (\d+) (\d+)$/.exec(line.trim());
    if (m) entries.push({ id: m[1], bytes: Number(m[2]), usedMs: Number(m[3]) * 1000 });
  }
  return { nowMs, entries };
}

/** This machine's cache at `root`, as LIST_SCRIPT reads a server's (mtime to the second, like stat %Y). */
export function listLocalCache(root: string): CachedGuest[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const out: CachedGuest[] = [];
  for (const id of names) {
    if (id.startsWith('.')) continue;
    try {
      const dir = statSync(join(root, id));
      if (!dir.isDirectory() || statSync(join(root, id, 'meta.json')).size === 0) continue;
      out.push({ id, bytes: statSync(join(root, id, 'guest.mig')).size, usedMs: Math.floor(dir.mtimeMs / 1000) * 1000 });
    } catch {
      /* incomplete, or removed meanwhile */
    }
  }
  return out;
}

/** Bounds this machine's cache after `keep` was made; returns the log line, if any. */
export function boundLocalCache(root: string, keep: string, maxBytes = savedGuestsMaxBytes(), nowMs = Date.now()): string | null {
  const entries = listLocalCache(root);
  const removed = chooseEvictions(entries, { maxBytes, keep, nowMs });
  for (const e of removed) rmSync(join(root, e.id), { recursive: true, force: true });
  return evictionNote('on this machine', entries, removed, maxBytes);
}
