import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { shScript } from '../driver/ssh/remote-host.ts';
import { UserError } from '../util/errors.ts';
import {
  boundLocalCache,
  chooseEvictions,
  DEFAULT_SAVED_GUESTS_MAX_MB,
  evictionNote,
  LIST_SCRIPT,
  listLocalCache,
  parseCacheListing,
  RECENT_MS,
  savedGuestsMaxBytes,
  type CachedGuest,
} from './saved-guest-cache.ts';

const MIB = 2 ** 20;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'mb-g-cache-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A complete saved guest of `bytes` whose directory was last used `ageS` seconds ago. */
function saved(root: string, id: string, bytes: number, ageS: number): void {
  const dir = join(root, id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'guest.mig'), Buffer.alloc(bytes));
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ id }));
  const t = new Date(Date.now() - ageS * 1000);
  utimesSync(dir, t, t);
}

const g = (id: string, mib: number, ageMin: number, now: number): CachedGuest => ({ id, bytes: mib * MIB, usedMs: now - ageMin * 60_000 });

describe('the bound on a cache of saved guests', () => {
  it('reads MIGBENCH_SAVED_GUESTS_MAX_MB, and refuses a value that is not a positive number', () => {
    expect(savedGuestsMaxBytes({})).toBe(DEFAULT_SAVED_GUESTS_MAX_MB * MIB);
    expect(savedGuestsMaxBytes({ MIGBENCH_SAVED_GUESTS_MAX_MB: '' })).toBe(DEFAULT_SAVED_GUESTS_MAX_MB * MIB);
    expect(savedGuestsMaxBytes({ MIGBENCH_SAVED_GUESTS_MAX_MB: '512' })).toBe(512 * MIB);
    expect(savedGuestsMaxBytes({ MIGBENCH_SAVED_GUESTS_MAX_MB: '0.5' })).toBe(MIB / 2);
    for (const bad of ['0', '-1', 'lots', '4G'])
      expect(() => savedGuestsMaxBytes({ MIGBENCH_SAVED_GUESTS_MAX_MB: bad })).toThrow(
        new UserError(`MIGBENCH_SAVED_GUESTS_MAX_MB must be a positive number of MiB (got "${bad}"); unset it for 4096`),
      );
  });

  it('removes the least recently used first, until the rest fit; never the kept one nor one used recently', () => {
    const now = 1_800_000_000_000;
    const all = [g('new', 80, 0, now), g('b', 80, 30, now), g('a', 80, 90, now), g('c', 80, 20, now), g('busy', 80, 1, now)];
    // 400 MiB under a 250 MiB bound: a (90 min) and b (30 min) go, c (20 min) is enough then
    expect(chooseEvictions(all, { maxBytes: 250 * MIB, keep: 'new', nowMs: now }).map((e) => e.id)).toEqual(['a', 'b']);
    // under the bound already: nothing
    expect(chooseEvictions(all, { maxBytes: 400 * MIB, keep: 'new', nowMs: now })).toEqual([]);
    // a bound nothing fits under: everything old goes, the kept one and the recently used stay
    expect(chooseEvictions(all, { maxBytes: 1, keep: 'new', nowMs: now }).map((e) => e.id)).toEqual(['a', 'b', 'c']);
    // the kept one is kept even when it is the oldest
    expect(chooseEvictions(all, { maxBytes: 1, keep: 'a', nowMs: now, recentMs: 0 }).map((e) => e.id)).toEqual(['b', 'c', 'busy', 'new']);
    // equal ages: by id, so two runs choose the same
    const tie = [g('y', 80, 60, now), g('x', 80, 60, now), g('k', 80, 0, now)];
    expect(chooseEvictions(tie, { maxBytes: 100 * MIB, keep: 'k', nowMs: now }).map((e) => e.id)).toEqual(['x', 'y']);
    expect(RECENT_MS).toBe(10 * 60_000);
  });

  it('says what it removed, and when the rest is still over the bound', () => {
    const now = 1_800_000_000_000;
    const all = [g('a', 80, 90, now), g('k', 80, 0, now), g('r', 80, 2, now)];
    expect(evictionNote('on s1', all, [], 100 * MIB)).toBeNull();
    expect(evictionNote('on s1', all, [all[0]], 200 * MIB)).toBe(
      'saved guests on s1: removed 1 least recently used (80 MiB) to stay under 200 MiB (MIGBENCH_SAVED_GUESTS_MAX_MB)',
    );
    expect(evictionNote('on s1', all, [all[0]], 100 * MIB)).toBe(
      'saved guests on s1: removed 1 least recently used (80 MiB) to stay under 100 MiB (MIGBENCH_SAVED_GUESTS_MAX_MB); ' +
        'still 160 MiB: the rest was used in the last 10 min',
    );
  });

  it("lists a server's cache through sh as this machine's is listed: complete saved guests only, with sizes and last use", async () => {
    const root = scratch();
    saved(root, 'aaaa', 3000, 7200);
    saved(root, 'bbbb', 100, 60);
    mkdirSync(join(root, 'incomplete'));
    writeFileSync(join(root, 'incomplete', 'guest.mig'), 'partial');
    saved(root, '.tmp-cccc-1', 50, 0); // a maker's directory
    writeFileSync(join(root, 'stray-file'), 'x');
    const r = await execa(...split(shScript(LIST_SCRIPT, root)), { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const listed = parseCacheListing(r.stdout);
    expect(Math.abs(listed.nowMs! - Date.now())).toBeLessThan(5000);
    const byId = (xs: CachedGuest[]) => [...xs].sort((a, b) => a.id.localeCompare(b.id));
    expect(byId(listed.entries)).toEqual(byId(listLocalCache(root)));
    expect(byId(listed.entries).map((e) => [e.id, e.bytes])).toEqual([
      ['aaaa', 3000],
      ['bbbb', 100],
    ]);
    const aaaa = listed.entries.find((e) => e.id === 'aaaa')!;
    expect(Math.abs(aaaa.usedMs - (Date.now() - 7_200_000))).toBeLessThan(5000);
    // no cache yet: the clock only
    const none = await execa(...split(shScript(LIST_SCRIPT, join(root, 'absent'))), { reject: false });
    expect(none.exitCode).toBe(0);
    expect(parseCacheListing(none.stdout).entries).toEqual([]);
    expect(parseCacheListing('sh: 1: stat: not found\n').nowMs).toBeNull();
  });

  it("bounds this machine's cache: the oldest go, the one just made and recently used ones stay", () => {
    const root = scratch();
    saved(root, 'old1', 4 * MIB, 3 * 3600);
    saved(root, 'old2', 4 * MIB, 2 * 3600);
    saved(root, 'recent', 4 * MIB, 60);
    saved(root, 'made', 4 * MIB, 0);
    expect(boundLocalCache(root, 'made', 100 * MIB)).toBeNull();
    expect(listLocalCache(root)).toHaveLength(4);
    const note = boundLocalCache(root, 'made', 9 * MIB);
    expect(note).toBe(
      'saved guests on this machine: removed 2 least recently used (8 MiB) to stay under 9 MiB (MIGBENCH_SAVED_GUESTS_MAX_MB)',
    );
    expect(existsSync(join(root, 'old1'))).toBe(false);
    expect(existsSync(join(root, 'old2'))).toBe(false);
    expect(
      listLocalCache(root)
        .map((e) => e.id)
        .sort(),
    ).toEqual(['made', 'recent']);
    expect(statSync(join(root, 'made', 'guest.mig')).size).toBe(4 * MIB);
    expect(boundLocalCache(join(root, 'absent'), 'made', 1)).toBeNull();
  });
});

const split = (argv: string[]): [string, string[]] => [argv[0], argv.slice(1)];
