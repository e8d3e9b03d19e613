import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  coldBootReason,
  configLine,
  ensureSavedGuest,
  keyFor,
  restoreOrBoot,
  SavedGuestLoadError,
  savedGuestId,
  type SavedGuestKey,
} from './saved-guest.ts';
import type { GuestBoot } from '../store/schema/guest-start.ts';
import type { StartVmOptions } from './qemu.ts';
import { UserError } from '../util/errors.ts';

const key: SavedGuestKey = {
  imageHash: 'abc',
  memoryMiB: 128,
  vcpus: 1,
  machine: 'q35',
  cpu: 'max',
  accel: 'tcg',
  mac: '52:54:00:e7:00:00',
  qemu: 'QEMU emulator version 10.0.2',
  host: '6.1.0|EPYC',
};
const vm: StartVmOptions = {
  name: 'vm1',
  memoryMiB: 128,
  accel: 'tcg',
  runDir: '/tmp/x',
  image: { kernel: '/k/vmlinuz', initrd: '/k/initrd.img', hash: 'h', kernelVersion: '6.1' },
  tap: { ifname: 'mb-t0', mac: '52:54:00:e7:00:00' },
};

const savedEnv = { cache: process.env.MIGBENCH_CACHE, max: process.env.MIGBENCH_SAVED_GUESTS_MAX_MB };
afterEach(() => {
  delete process.env.MIGBENCH_GUEST_BOOT;
  for (const [k, v] of [
    ['MIGBENCH_CACHE', savedEnv.cache],
    ['MIGBENCH_SAVED_GUESTS_MAX_MB', savedEnv.max],
  ] as const)
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
});

describe('saved guests', () => {
  it('names a saved guest by everything the restoring QEMU must match', () => {
    const id = savedGuestId(key);
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(savedGuestId({ ...key })).toBe(id);
    const changed: Partial<SavedGuestKey>[] = [
      { imageHash: 'abd' },
      { memoryMiB: 256 },
      { vcpus: 2 },
      { machine: 'pc' },
      { cpu: 'host' },
      { accel: 'kvm' },
      { mac: '52:54:00:e7:00:01' },
      { mac: null },
      { qemu: 'QEMU emulator version 10.0.3' },
      { host: '6.1.1|EPYC' },
    ];
    const ids = changed.map((c) => savedGuestId({ ...key, ...c }));
    expect(new Set([id, ...ids]).size).toBe(changed.length + 1);
  });

  it('gives a restored guest the mb.* words of a cold boot and the wall clock, nothing for the kernel', () => {
    const o = { name: 'vm1', ip: '10.0.0.2/24', gw: '10.0.0.1', httpd: true, workload: 'dirty:wset=16M,period=10ms' };
    expect(configLine(o, 1_700_000_000_999)).toBe(
      'mb.vm=vm1 mb.ip=10.0.0.2/24 mb.gw=10.0.0.1 mb.httpd=1 mb.workload=dirty:wset=16M,period=10ms mb.now=1700000000',
    );
    expect(configLine({ name: 'idle' }, 0)).toBe('mb.vm=idle mb.now=0');
    expect(() => configLine({ name: 'vm1', workload: 'dirty:a b' }, 0)).toThrow(UserError);
  });

  it('restores unless the spec, the environment or the VM itself asks for a cold boot', () => {
    expect(coldBootReason(vm)).toBeNull();
    expect(coldBootReason(vm, 'auto')).toBeNull();
    expect(coldBootReason(vm, 'cold')).toMatch(/vms\[\]\.boot/);
    expect(coldBootReason({ ...vm, incoming: 'defer' })).toMatch(/destination/);
    expect(coldBootReason({ ...vm, disk: { path: '/d.qcow2', format: 'qcow2' } })).toMatch(/disk/);
    expect(coldBootReason({ ...vm, cmdlineExtra: ['quiet'] })).toMatch(/kernel parameters/);
    process.env.MIGBENCH_GUEST_BOOT = 'cold';
    expect(coldBootReason(vm)).toMatch(/MIGBENCH_GUEST_BOOT/);
    process.env.MIGBENCH_GUEST_BOOT = 'warm';
    expect(() => coldBootReason(vm)).toThrow(UserError);
  });
});

describe("this machine's cache", () => {
  it('finds a saved guest and marks it used (its directory mtime); a bad bound stops before anything is looked up', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'mb-g-sg-'));
    try {
      process.env.MIGBENCH_CACHE = cache;
      const id = savedGuestId(await keyFor(vm)); // this machine's QEMU version and host identity
      const dir = join(cache, 'saved-guests', id);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'guest.mig'), 'stream');
      writeFileSync(join(dir, 'meta.json'), '{}');
      const old = new Date(Date.now() - 3_600_000);
      utimesSync(dir, old, old);
      const found = await ensureSavedGuest(vm);
      expect(found).toEqual({ id, file: join(dir, 'guest.mig'), madeMs: null });
      expect(Math.abs(statSync(dir).mtimeMs - Date.now())).toBeLessThan(5000);
      process.env.MIGBENCH_SAVED_GUESTS_MAX_MB = 'lots';
      await expect(ensureSavedGuest(vm)).rejects.toThrow(/MIGBENCH_SAVED_GUESTS_MAX_MB must be a positive number of MiB \(got "lots"\)/);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});

describe('restore or boot (the decision both drivers share)', () => {
  /** A starter that records what was asked of it; `restore` does what the test says. */
  function starter(restore: () => Promise<string>, fatal?: (e: unknown) => boolean) {
    const calls: string[] = [];
    const boots: (GuestBoot | null)[] = [];
    return {
      calls,
      boots,
      how: {
        boot: async (b: GuestBoot | null) => {
          calls.push('boot');
          boots.push(b);
          return 'booted';
        },
        restore: async () => {
          calls.push('restore');
          return restore();
        },
        discard: (id: string) => void calls.push(`discard ${id}`),
        fatal,
      },
    };
  }

  it('starts a destination as asked, with no boot record and no restore', async () => {
    const s = starter(async () => 'restored');
    expect(await restoreOrBoot({ ...vm, incoming: 'defer' }, 'auto', s.how)).toBe('booted');
    expect(s.calls).toEqual(['boot']);
    expect(s.boots).toEqual([null]);
  });

  it('cold-boots what must, saying why, without trying a restore', async () => {
    const s = starter(async () => 'restored');
    expect(await restoreOrBoot(vm, 'cold', s.how)).toBe('booted');
    expect(s.calls).toEqual(['boot']);
    expect(s.boots).toEqual([{ mode: 'cold', from: null, reason: 'vms[].boot is cold', made_ms: null }]);
  });

  it('restores when it can', async () => {
    const s = starter(async () => 'restored');
    expect(await restoreOrBoot(vm, 'auto', s.how)).toBe('restored');
    expect(s.calls).toEqual(['restore']);
  });

  it('removes a saved guest QEMU could not load, then cold-boots saying so', async () => {
    const s = starter(async () => {
      throw new SavedGuestLoadError('0123456789abcdef', 'QEMU exited while loading it');
    });
    expect(await restoreOrBoot(vm, 'auto', s.how)).toBe('booted');
    expect(s.calls).toEqual(['restore', 'discard 0123456789abcdef', 'boot']);
    expect(s.boots[0]?.reason).toBe('no restore (restoring saved guest 0123456789abcdef: QEMU exited while loading it)');
  });

  it('any other failure costs a cold boot (first line of its message), unless the driver calls it fatal', async () => {
    const s = starter(async () => {
      throw new Error('saving guest x: disk full\nmore detail');
    });
    expect(await restoreOrBoot(vm, 'auto', s.how)).toBe('booted');
    expect(s.calls).toEqual(['restore', 'boot']);
    expect(s.boots[0]?.reason).toBe('no restore (saving guest x: disk full)');
    const f = starter(
      async () => {
        throw new UserError('bad');
      },
      (e) => e instanceof UserError,
    );
    await expect(restoreOrBoot(vm, 'auto', f.how)).rejects.toThrow('bad');
    expect(f.calls).toEqual(['restore']);
  });
});
