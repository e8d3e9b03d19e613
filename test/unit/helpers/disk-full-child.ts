/**
 * Runs inside `unshare -m` (a private mount namespace, as root): mounts a
 * 64 KiB tmpfs, appends migration records through the real RunDir until the
 * disk is full, frees space, appends again, loads the run directory with the
 * analysis reader, and prints what happened as one JSON line.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeRun } from '../../../analysis/analyze.ts';
import { loadRunDir } from '../../../analysis/rundir.ts';
import { RunDir } from '../../../harness/experiment/rundir.ts';
import { JsonlAppendError } from '../../../harness/store/jsonl.ts';
import { MANIFEST_SCHEMA_VERSION, type Manifest, type MigrationRecord } from '../../../harness/store/schema/index.ts';

const mnt = process.argv[2];
mkdirSync(mnt, { recursive: true });
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);

function record(i: number): MigrationRecord {
  const t0 = Date.parse('2026-11-30T10:00:00Z') + i * 20_000;
  return {
    id: `t1-r${i}-vm1`,
    flags: [],
    experiment: 'diskfull',
    treatment: 't1',
    rep: i,
    attempt: 1,
    vm: 'vm1',
    src: 'h1',
    dst: 'h2',
    status: 'completed',
    reason: null,
    partial: false,
    t_cmd: new Date(t0).toISOString(),
    t_stop: new Date(t0 + 9000).toISOString(),
    t_resume: new Date(t0 + 9300).toISOString(),
    t_done: new Date(t0 + 9200).toISOString(),
    total_ms: 9200 + i,
    total_ms_harness: 9201,
    downtime_reported_ms: 200,
    downtime_event_ms: 300,
    downtime_observed_ms: 310,
    preop_ms: 9000,
    postop_ms: 5,
    setup_ms: 2,
    transferred_bytes: 1e8 + i,
    passes: 5,
    energy_j: 150,
    link_rate_mbit: 100,
    memory_mib: 128,
    workload: 'dirty',
    downtime_limit_ms: 300,
    probe_interval_ms: 10,
    healthy: true,
    source_running: null,
    migration_uri: 'tcp:10.0.0.2:4400',
    // records of 3 to 11 KiB: some cross a page boundary of the full tmpfs, so the kernel writes part of them
    health: { answers: true, workload_running: true, problems: ['x'.repeat(3000 + (i % 3) * 4000)] },
  };
}

const dir = join(mnt, 'run');
const rd = new RunDir(dir, () => undefined);
const manifest: Manifest = {
  schema_version: MANIFEST_SCHEMA_VERSION,
  name: 'diskfull',
  spec: {},
  factors: {},
  treatments: [{ id: 't1', levels: {} }],
  shaping_mechanisms: {},
};
rd.writeManifest(manifest);
writeFileSync(join(mnt, 'ballast'), Buffer.alloc(16 * 1024, 1));

const recorded: string[] = [];
const notRecorded: { id: string; message: string }[] = [];
let samplesThrew = false;
for (let i = 0; notRecorded.length < 4 && i < 100; i++) {
  const r = record(i);
  try {
    rd.appendMigration(r);
    recorded.push(r.id);
  } catch (e) {
    if (!(e instanceof JsonlAppendError)) throw e;
    notRecorded.push({ id: r.id, message: e.message });
  }
  try {
    rd.appendSamples([
      { t: new Date().toISOString(), measurement: 'probe', tags: { vm: 'vm1' }, fields: { rtt_ms: 1, pad: 'y'.repeat(1500) } },
    ]);
  } catch {
    samplesThrew = true;
  }
}
const fileAfterFull = readFileSync(join(dir, 'migrations.jsonl'), 'utf8');

// free space, append again: the next record is clean
rmSync(join(mnt, 'ballast'));
const after = record(1000);
rd.appendMigration(after);
recorded.push(after.id);
rd.close();
const file = readFileSync(join(dir, 'migrations.jsonl'), 'utf8');
const lines = file.split('\n');
const run = loadRunDir(dir);
const a = await analyzeRun(run);
process.stdout.write(
  JSON.stringify({
    recorded,
    notRecorded,
    samplesThrew,
    samplesNotRecorded: rd.samplesNotRecorded,
    endsWithNewlineWhenFull: fileAfterFull === '' || fileAfterFull.endsWith('\n'),
    endsWithNewline: file.endsWith('\n'),
    idsInFile: lines.filter((l) => l !== '').map((l) => (JSON.parse(l) as { id: string }).id),
    loaded: run.migrations.map((m) => m.id),
    problems: run.problems,
    analysedCompleted: a.counts.completed,
  }) + '\n',
);
