// Guest-ready benchmark over SSH: the same 128 MiB guest as bench/restore.bench.ts (NIC, dirtying
// workload), started on one server of an emulated cluster (`testbed up --servers`, 2 servers) by the
// ssh driver's qemu back end, N times cold-booted and N times restored from the saved guest on that
// server (harness/driver/ssh/remote-saved-guest.ts), alternating; time from asking for the guest to its
// MB-READY line, over SSH. The saved guest is made first in a cache of its own (removed after). It builds
// a testbed and boots guests: run it alone. Run: node bin/run-ts.js bench/restore-ssh.bench.ts [n]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRemoteTap, deleteRemoteTap, ensureImage, removeRemoteDir } from '../harness/driver/ssh/remote-host.ts';
import { RemoteSavedGuests } from '../harness/driver/ssh/remote-saved-guest.ts';
import type { RemoteVmOptions } from '../harness/driver/ssh/remote-vm.ts';
import { buildGuestImage } from '../harness/image/build.ts';
import { loadInventory } from '../harness/inventory/load.ts';
import { SshPool } from '../harness/ssh/pool.ts';

const N = Number(process.argv[2] ?? 3);
const ID = 'mbbr';
const RUN_DIR = `/run/migbench/${ID}-bench`;
const cli = fileURLToPath(new URL('../bin/migbench.js', import.meta.url));
const dir = mkdtempSync('/tmp/mb-p-rsbench-');
const spec = join(dir, 'spec.yaml');
writeFileSync(
  spec,
  `name: bench-restore-ssh\ntestbed: {id: ${ID}, racks: [{name: r1, hosts: 2}]}\nvms: [{name: vm1, host: r1-h1, memory: 128MiB}]\n`,
);
const migbench = (args: string[]) =>
  execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

let pool: SshPool | undefined;
try {
  migbench(['testbed', 'down', ID]);
  migbench(['testbed', 'up', spec, '--servers']);
  const inv = join(dir, 'inventory.yaml');
  writeFileSync(inv, migbench(['testbed', 'inventory', ID, '--hypervisor', 'qemu']));
  const { hosts, hostKeys } = loadInventory(inv);
  const server = hosts[0];
  pool = new SshPool({ hostKeys });
  await pool.connectAll([server.ssh]);
  const conn = pool.get(server.name);
  const image = await ensureImage(conn, await buildGuestImage(), `${RUN_DIR}/images`);
  const tap = 'mb-tb0';
  await createRemoteTap(conn, tap, server.bridge ?? 'br0');
  const saved = new RemoteSavedGuests(`${RUN_DIR}/saved-guests`);
  const o: RemoteVmOptions = {
    name: 'bench',
    memoryMiB: 128,
    image,
    accel: 'tcg', // as the emulated servers run it (KVM guests hang on this machine)
    ip: '10.231.100.2/16',
    httpd: true,
    workload: 'dirty:wset=16M,period=10ms,bpc=4',
    tap: { ifname: tap, mac: '52:54:00:e7:ff:00' },
    remoteDir: RUN_DIR,
    localDir: dir,
  };
  let t = Date.now();
  const made = await saved.ensure(conn, o, {});
  console.log(`saved guest ${made.id} made on ${server.name} in ${s(Date.now() - t)}`);
  const times = { cold: [] as number[], restored: [] as number[] };
  for (let i = 0; i < N; i++) {
    for (const mode of ['cold', 'auto'] as const) {
      t = Date.now();
      const vm = await saved.start(conn, { ...o, fileStem: `bench.${i}.${mode}` }, mode, {});
      try {
        await vm.waitForSerial(/MB-READY/, 180_000);
        const got = vm.boot?.mode;
        if (got !== (mode === 'cold' ? 'cold' : 'restored')) throw new Error(`expected ${mode}, got ${JSON.stringify(vm.boot)}`);
        times[got].push(Date.now() - t);
      } finally {
        await vm.kill(2000);
      }
    }
  }
  await deleteRemoteTap(conn, tap);
  await removeRemoteDir(conn, RUN_DIR);
  console.log(
    `guest ready over SSH (128 MiB, NIC, dirty workload, TCG), ${N} each, ms: cold ${times.cold.join(' ')}  restored ${times.restored.join(' ')}`,
  );
  console.log(
    `guest ready over SSH: cold boot ${s(median(times.cold))} vs restore ${s(median(times.restored))} (medians, ` +
      `${(median(times.cold) / median(times.restored)).toFixed(1)}x; goal <= 1.5 s)`,
  );
} finally {
  pool?.closeAll();
  try {
    migbench(['testbed', 'down', ID]);
  } catch (e) {
    console.error(`testbed down ${ID}: ${(e as Error).message}`);
  }
  rmSync(dir, { recursive: true, force: true });
}
