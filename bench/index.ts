/**
 * `npm run bench`: runs each benchmark in its own process (so one's memory
 * and timers do not disturb the next) and prints their figures.
 *   analysis: a synthetic Salfner-scale campaign (10,560 migrations, 1 M power samples)
 *   power:    50 local BMCs polled at 1 Hz (readings/s, CPU), InfluxDB ingest (points/s)
 *   ssh:      preflight + connect against 32 emulated servers (testbed up --servers; builds a testbed)
 *   duty:     campaign duty cycle (time migrating / wall time) of a small fixed campaign (builds a testbed; takes the testbed lock)
 *   restore:  guest ready time, cold boot vs restore from a saved guest (3 each; boots guests)
 *   restore-ssh: the same over SSH, on a server of an emulated cluster (3 each; builds a testbed, boots guests)
 *   cli:      start-up time of migbench commands that end at once (help, status, a spec error)
 * Pass names to run a subset: npm run bench -- analysis
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ALL = ['analysis', 'cli', 'power', 'ssh', 'restore', 'restore-ssh', 'duty'];
const only = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const runner = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
let failed = 0;
for (const name of only.length ? only : ALL) {
  if (!ALL.includes(name)) {
    console.error(`unknown benchmark '${name}'; known: ${ALL.join(', ')}`);
    process.exit(2);
  }
  console.log(`\n=== bench: ${name} ===`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [runner, fileURLToPath(new URL(`./${name}.bench.ts`, import.meta.url))], { stdio: 'inherit' });
  console.log(`=== ${name}: ${r.status === 0 ? 'ok' : `failed (exit ${r.status})`} in ${((Date.now() - t0) / 1000).toFixed(1)} s ===`);
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
