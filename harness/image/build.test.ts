import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { compareKernelVersions, findKernel, isStaticElf, parseModulesDep, NIC_MODULES } from './build.ts';
import { writeCpio } from './cpio.ts';
import { UserError } from '../util/errors.ts';

describe('guest image helpers', () => {
  it('orders kernel versions numerically', () => {
    const v = ['6.1.0-9-amd64', '6.1.0-56-amd64', '6.10.0-1-amd64', '6.1.0-10-amd64'];
    expect(v.sort(compareKernelVersions)).toEqual(['6.1.0-9-amd64', '6.1.0-10-amd64', '6.1.0-56-amd64', '6.10.0-1-amd64']);
  });

  it('picks the newest /boot/vmlinuz-* and explains how to get one when absent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mb-g-boot-'));
    try {
      expect(() => findKernel(dir)).toThrow(UserError);
      expect(() => findKernel(dir)).toThrow(/apt-get install linux-image-amd64/);
      for (const n of ['vmlinuz-6.1.0-9-amd64', 'vmlinuz-6.1.0-56-amd64', 'config-6.1.0-99-amd64']) writeFileSync(join(dir, n), '');
      expect(findKernel(dir)).toEqual({ path: join(dir, 'vmlinuz-6.1.0-56-amd64'), version: '6.1.0-56-amd64' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('maps module names to paths from modules.dep, whatever the compression', () => {
    const dep = parseModulesDep(
      'kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz\n' +
        'kernel/drivers/virtio/virtio-ring.ko.zst:\nkernel/net/core/failover.ko:\n',
    );
    expect(dep.get('virtio_net')).toBe('kernel/drivers/net/virtio_net.ko.xz');
    expect(dep.get('virtio_ring')).toBe('kernel/drivers/virtio/virtio-ring.ko.zst');
    expect(dep.get('failover')).toBe('kernel/net/core/failover.ko');
    expect(NIC_MODULES[0]).toBe('virtio_ring');
    expect(NIC_MODULES.at(-1)).toBe('virtio_net');
  });

  it('tells static from dynamic ELF binaries', () => {
    expect(isStaticElf(readFileSync(process.execPath))).toBe(false); // node is dynamic
    expect(isStaticElf(Buffer.from('#!/bin/sh\n'))).toBe(false);
  });

  it('writes a newc archive cpio(1) can read back, with device nodes and symlinks', () => {
    const buf = writeCpio([
      { kind: 'dir', path: 'bin' },
      { kind: 'dir', path: 'dev' },
      { kind: 'file', path: 'init', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
      { kind: 'symlink', path: 'bin/sh', target: '/bin/busybox' },
      { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    ]);
    expect(buf.subarray(0, 6).toString()).toBe('070701');
    expect(buf.length % 4).toBe(0);
    const listing = execFileSync('cpio', ['-itv', '--quiet'], { input: buf }).toString();
    expect(listing).toMatch(/^-rwxr-xr-x .* 18 .* init$/m);
    expect(listing).toMatch(/^lrwxrwxrwx .* bin\/sh -> \/bin\/busybox$/m);
    expect(listing).toMatch(/^crw------- .* 5,\s+1 .* dev\/console$/m);
    expect(listing.trim().split('\n')).toHaveLength(5);
  });
});
