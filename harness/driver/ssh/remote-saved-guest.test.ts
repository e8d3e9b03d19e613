import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { hostIdentityOf } from '../../hypervisor/saved-guest.ts';
import { shScript } from './remote-host.ts';
import { COMMIT_SCRIPT, FOUND_SCRIPT, IDENTITY_SCRIPT, MKTMP_SCRIPT, parseIdentity, RemoteSavedGuests } from './remote-saved-guest.ts';

/** The server side of saved guests is fixed shell text with positional arguments; here it runs under the local sh. */
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'mb-g-rsg-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const sh = (argv: string[]) => execa(argv[0], argv.slice(1), { reject: false });

/** A complete saved guest directory as the maker leaves it before the commit. */
function made(dir: string, tag: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'guest.mig'), `stream ${tag}`);
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ tag }));
}

describe('saved guests on a server', () => {
  it('reads the QEMU version, kernel and CPU as the local key does', async () => {
    const r = await sh(shScript(IDENTITY_SCRIPT, 'qemu-system-x86_64'));
    expect(r.exitCode, r.stderr).toBe(0);
    const id = parseIdentity(r.stdout)!;
    expect(id.qemu).toMatch(/^QEMU emulator version \d+\.\d+/);
    // the same machine read through the script and through node: the same identity, so the same saved guest ids
    expect(id.host).toBe(hostIdentityOf(release(), readFileSync('/proc/cpuinfo', 'utf8')));
    expect(parseIdentity('sh: qemu-system-x86_64: not found\n')).toBeNull();
    expect(parseIdentity('QEMU emulator version 9.2.0\n\n')).toBeNull(); // no kernel release
    expect(parseIdentity('QEMU emulator version 9.2.0\n6.1.0-1\n')).toEqual({ qemu: 'QEMU emulator version 9.2.0', host: '6.1.0-1|' });
  });

  it('finds only a complete saved guest (meta.json is written last)', async () => {
    const d = join(scratch(), `id with 'quotes' $(x)`);
    expect((await sh(shScript(FOUND_SCRIPT, d))).exitCode).not.toBe(0);
    mkdirSync(d);
    writeFileSync(join(d, 'guest.mig'), 'partial');
    expect((await sh(shScript(FOUND_SCRIPT, d))).exitCode).not.toBe(0);
    const old = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000); // whole seconds: mtimeMs is exact then
    utimesSync(d, old, old);
    expect((await sh(shScript(FOUND_SCRIPT, d))).exitCode).not.toBe(0);
    expect(statSync(d).mtimeMs).toBe(old.getTime()); // an incomplete one is not marked used
    writeFileSync(join(d, 'meta.json'), '{}');
    utimesSync(d, old, old);
    expect((await sh(shScript(FOUND_SCRIPT, d))).exitCode).toBe(0);
    // found: marked used now (the cache bound removes the least recently used)
    expect(Math.abs(statSync(d).mtimeMs - Date.now())).toBeLessThan(5000);
  });

  it('commits a made guest in one rename; a second maker keeps the first copy and removes its own', async () => {
    const root = scratch();
    const final = join(root, 'abc');
    made(join(root, '.tmp-abc-1'), 'first');
    made(join(root, '.tmp-abc-2'), 'second');
    const r1 = await sh(shScript(COMMIT_SCRIPT, join(root, '.tmp-abc-1'), final));
    expect(r1.exitCode, r1.stderr).toBe(0);
    const r2 = await sh(shScript(COMMIT_SCRIPT, join(root, '.tmp-abc-2'), final));
    expect(r2.exitCode, r2.stderr).toBe(0);
    expect(readdirSync(root)).toEqual(['abc']);
    expect(readFileSync(join(final, 'guest.mig'), 'utf8')).toBe('stream first');
  });

  it('fails the commit with a message when the place is taken by something incomplete', async () => {
    const root = scratch();
    const final = join(root, 'abc');
    mkdirSync(final);
    writeFileSync(join(final, 'junk'), 'x'); // not empty, no meta.json
    made(join(root, '.tmp-abc-1'), 'first');
    const r = await sh(shScript(COMMIT_SCRIPT, join(root, '.tmp-abc-1'), final));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/cannot move .*tmp-abc-1 to .*abc/);
  });

  it("creates a maker's directory, removing only makers' directories untouched for an hour", async () => {
    const root = join(scratch(), 'cache');
    const r0 = await sh(shScript(MKTMP_SCRIPT, root, join(root, '.tmp-a-1')));
    expect(r0.exitCode, r0.stderr).toBe(0);
    made(join(root, '.tmp-b-old'), 'killed maker');
    made(join(root, 'c'), 'a saved guest, however old');
    const old = new Date(Date.now() - 2 * 3600_000);
    for (const d of ['.tmp-b-old', 'c']) utimesSync(join(root, d), old, old);
    const r1 = await sh(shScript(MKTMP_SCRIPT, root, join(root, '.tmp-d-2')));
    expect(r1.exitCode, r1.stderr).toBe(0);
    expect(readdirSync(root).sort()).toEqual(['.tmp-a-1', '.tmp-d-2', 'c']);
    // the same directory twice: a clash, not a shared directory
    expect((await sh(shScript(MKTMP_SCRIPT, root, join(root, '.tmp-d-2')))).exitCode).not.toBe(0);
  });

  it('keeps its cache under a migbench directory', () => {
    expect(() => new RemoteSavedGuests('/var/tmp/migbench/saved-guests')).not.toThrow();
    expect(() => new RemoteSavedGuests('/var/tmp/saved-guests')).toThrow(/migbench/);
    expect(() => new RemoteSavedGuests('relative/migbench/x')).toThrow(/absolute/);
  });
});
