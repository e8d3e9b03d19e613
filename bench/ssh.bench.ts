// SSH benchmark: an emulated cluster of N servers (`testbed up --servers`, default 32: every
// server its own sshd and libvirtd in its namespaces), then what a run on it starts with:
// connecting to every server in parallel and the whole preflight (probes, qdisc trials,
// clock offsets), timed; one-by-one connecting for comparison. It builds a testbed: run it
// alone (nothing else building testbeds or booting guests).
// Run: node bin/run-ts.js bench/ssh.bench.ts [nServers]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadInventory } from '../harness/inventory/load.ts';
import { SshPool } from '../harness/ssh/pool.ts';
import { runPreflight } from '../harness/ssh/preflight.ts';

const N = Number(process.argv[2] ?? 32);
const ID = 'mbbs';
const cli = fileURLToPath(new URL('../bin/migbench.js', import.meta.url));
const dir = mkdtempSync('/tmp/mb-p-sshbench-');
const racks = Math.ceil(N / 8);
const spec = join(dir, 'spec.yaml');
writeFileSync(
  spec,
  [
    `name: bench-ssh`,
    `testbed:`,
    `  id: ${ID}`,
    `  racks: [${Array.from({ length: racks }, (_, i) => `{name: r${i + 1}, hosts: ${Math.min(8, N - i * 8)}}`).join(', ')}]`,
    `  migration_network: shared`,
    `vms: [{name: vm1, host: r1-h1, memory: 128MiB}]`,
    '',
  ].join('\n'),
);
const migbench = (args: string[]) =>
  execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

try {
  migbench(['testbed', 'down', ID]);
  let t = performance.now();
  migbench(['testbed', 'up', spec, '--servers']);
  console.log(`testbed up --servers (${N} servers): ${s(performance.now() - t)}`);
  const inv = join(dir, 'inventory.yaml');
  writeFileSync(inv, migbench(['testbed', 'inventory', ID, '--hypervisor', 'qemu']));
  const { hosts, hostKeys } = loadInventory(inv);

  const pool = new SshPool({ hostKeys });
  t = performance.now();
  const report = await runPreflight(
    pool,
    hosts.map((h) => ({ name: h.name, ssh: h.ssh, hypervisor: h.hypervisor })),
    {},
  );
  const total = performance.now() - t;
  pool.closeAll();
  const clocks = report.hosts.map((h) => h.clock?.uncertaintyMs ?? NaN).sort((a, b) => a - b);
  console.log(`preflight + connect, ${N} servers in parallel: ${s(total)} (connect ${s(report.connectMs)}; goal <= 10 s)`);
  console.log(
    `  clock offset uncertainty per server: median ${clocks[clocks.length >> 1].toFixed(2)} ms, max ${clocks.at(-1)!.toFixed(2)} ms`,
  );

  const serial = new SshPool({ hostKeys, concurrency: 1 });
  t = performance.now();
  await serial.connectAll(hosts.map((h) => h.ssh));
  console.log(`connect one by one, for comparison: ${s(performance.now() - t)}`);
  serial.closeAll();
} finally {
  try {
    migbench(['testbed', 'down', ID]);
  } catch (e) {
    console.error(`testbed down ${ID}: ${(e as Error).message}`);
  }
  rmSync(dir, { recursive: true, force: true });
}
