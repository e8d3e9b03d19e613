// Guest-ready benchmark: a 128 MiB guest with a NIC and a dirtying workload,
// started N times cold-booted and N times restored from its saved guest
// (harness/hypervisor/saved-guest.ts), alternating; time from asking for the
// guest to its MB-READY line. Runs in a network namespace of its own (a
// bridge and a tap, no links). Run: node bin/run-ts.js bench/restore.bench.ts [n]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTap, deleteTap } from '../harness/driver/local.ts';
import { probeAccelerator } from '../harness/hypervisor/accel.ts';
import { ensureSavedGuest, startGuestFast } from '../harness/hypervisor/saved-guest.ts';
import type { StartVmOptions } from '../harness/hypervisor/qemu.ts';
import { buildGuestImage } from '../harness/image/build.ts';
import { run } from '../harness/util/exec.ts';

const N = Number(process.argv[2] ?? 3);
const ns = `mb-bench-rs${process.pid % 10000}`;
const dir = mkdtempSync(join(tmpdir(), 'mb-rs-bench-'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

await run('ip', ['netns', 'add', ns]);
try {
  await run('ip', ['-n', ns, 'link', 'add', 'mb-br', 'type', 'bridge']);
  await run('ip', ['-n', ns, 'link', 'set', 'mb-br', 'up']);
  const image = await buildGuestImage();
  const accel = await probeAccelerator(image);
  const o: StartVmOptions = {
    name: 'bench',
    netns: ns,
    memoryMiB: 128,
    image,
    accel: accel.accel,
    ip: '10.99.0.2/24',
    httpd: true,
    workload: 'dirty:wset=16M,period=10ms,bpc=4',
    tap: { ifname: 'mb-tb0', mac: '52:54:00:e7:ff:00' },
    runDir: dir,
  };
  await createTap(ns, 'mb-tb0');
  const t0 = Date.now();
  const saved = await ensureSavedGuest(o);
  const made = saved.madeMs === null ? 'in the cache' : `made in ${Date.now() - t0} ms`;
  const times = { cold: [] as number[], restored: [] as number[] };
  for (let i = 0; i < N; i++) {
    for (const mode of ['cold', 'auto'] as const) {
      const t = Date.now();
      const vm = await startGuestFast(o, mode);
      try {
        await vm.waitForSerial(/MB-READY/, 180_000);
        if (vm.boot?.mode !== (mode === 'cold' ? 'cold' : 'restored')) throw new Error(`expected ${mode}, got ${JSON.stringify(vm.boot)}`);
        times[vm.boot.mode].push(Date.now() - t);
      } finally {
        await vm.kill(2000);
      }
    }
  }
  console.log(`accelerator: ${accel.accel} (${accel.reason})`);
  console.log(`saved guest ${saved.id}: ${made}`);
  console.log(
    `guest ready (128 MiB, NIC, dirty workload), ${N} each, ms: cold ${times.cold.join(' ')}  restored ${times.restored.join(' ')}`,
  );
  console.log(
    `guest ready: cold boot ${(median(times.cold) / 1000).toFixed(2)} s vs restore ${(median(times.restored) / 1000).toFixed(2)} s (medians, ` +
      `${(median(times.cold) / median(times.restored)).toFixed(1)}x)`,
  );
} finally {
  await deleteTap(ns, 'mb-tb0');
  await run('ip', ['netns', 'del', ns], { allowFail: true });
  rmSync(dir, { recursive: true, force: true });
}
