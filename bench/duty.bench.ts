/**
 * Campaign duty-cycle benchmark (issue 17): a small fixed campaign on the
 * local testbed (1 VM of 128 MiB dirtying 16 MiB, 200 Mbit/s migration link,
 * 6 migrations ping-pong, 0 s pause, no warm-up), then the run's duty cycle
 * (time migrating / wall time, from manifest.timing) and where the rest went
 * (timing.jsonl). Builds a testbed, so it takes the machine-wide testbed lock.
 *
 *   node bin/run-ts.js bench/duty.bench.ts [--keep]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dutyCycleText } from '../harness/experiment/duty-cycle.ts';
import { DutyCycleSchema, MigrationRecordSchema, TimingLineSchema } from '../harness/store/schema/index.ts';
import { migrationWindows } from '../harness/experiment/runner.ts';
import { readJsonl } from '../harness/store/jsonl.ts';

/** The goal of issue 17 with a 0 s pause. */
const GOAL = 0.85;
const MIGRATIONS = 6;
const LOCK = '/tmp/mb-testbed.lock';

const keep = process.argv.includes('--keep');
const root = mkdtempSync(join(tmpdir(), 'migbench-duty-bench-'));
const spec = `# bench/duty.bench.ts: the fixed campaign the duty cycle is measured on
name: bench-duty
testbed:
  id: anduty
  racks: [{name: r1, hosts: 2}]
  shaping:
    - {link: r1-h1/mig, rate: 200mbit}
    - {link: r1-h2/mig, rate: 200mbit}
vms:
  - {name: vm1, host: r1-h1, memory: 128MiB, workload: {kind: dirty, wset: 16MiB, period: 10ms, bpc: 4}}
migration:
  downtime_limit: 300ms
  max_time: 60s
  pause: 0s
  moves: [{vm: vm1, to: r1-h2}]
measure: {probe_interval: 10ms}
repetitions: ${MIGRATIONS}
`;
try {
  const specFile = join(root, 'duty.yaml');
  writeFileSync(specFile, spec);
  const migbench = fileURLToPath(new URL('../bin/migbench.js', import.meta.url));
  const t0 = Date.now();
  const r = spawnSync('flock', [LOCK, process.execPath, migbench, 'run', specFile, '--out', join(root, 'runs'), '--no-report'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  const wall = (Date.now() - t0) / 1000;
  const out = r.stdout ?? '';
  const dir = /run directory: (\S+)/.exec(out)?.[1];
  if (!dir) {
    process.stdout.write(out);
    console.error(`migbench run exited ${r.status} without a run directory`);
    process.exit(1);
  }
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { timing?: unknown[] };
  const d = DutyCycleSchema.parse(manifest.timing?.at(-1));
  const spans = readJsonl(join(dir, 'timing.jsonl')).map((l) => TimingLineSchema.parse(l));
  console.log(
    `campaign: 1 VM of 128 MiB, 200 Mbit/s, ${MIGRATIONS} migrations, 0 s pause (exit ${r.status}, ${wall.toFixed(1)} s with the lock wait)`,
  );
  console.log(dutyCycleText(d, 10));
  // the per-migration part alone (no testbed, guest start or teardown): from the first command to the last window's end
  const windows = migrationWindows(readJsonl(join(dir, 'migrations.jsonl')).map((l) => MigrationRecordSchema.parse(l)));
  if (windows.length) {
    const from = Math.min(...windows.map((w) => w.start));
    const to = Math.max(...windows.map((w) => w.end));
    const inside = windows.reduce((n, w) => n + (w.end - w.start), 0);
    console.log(
      `between the first migrate command and the last migration's end: ${((inside / (to - from)) * 100).toFixed(1)} % migrating ` +
        `(${((to - from - inside) / Math.max(1, windows.length - 1) / 1000).toFixed(2)} s between migrations)`,
    );
  }
  const boots = spans.filter((s) => s.kind === 'guest-start').map((s) => s.end_ms - s.start_ms);
  console.log(`guest start: ${boots.map((ms) => `${(ms / 1000).toFixed(2)} s`).join(', ') || '-'}`);
  console.log(`duty cycle ${d.duty_cycle === null ? '-' : `${(d.duty_cycle * 100).toFixed(1)} %`} (goal >= ${GOAL * 100} %)`);
  if (keep) console.log(`kept ${dir}`);
  if (r.status !== 0) process.exitCode = 1;
} finally {
  if (!keep) rmSync(root, { recursive: true, force: true });
}
