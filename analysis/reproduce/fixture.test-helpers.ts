/**
 * Test support for the study evaluators: migration records and run
 * directories built in memory (every field the schema defaults, the rest given).
 */
import { MigrationRecordSchema } from '../../harness/store/schema/index.ts';
import { inMemoryRun, type Manifest, type Migration, type RunDir } from '../rundir.ts';
import type { Sample } from '../../harness/store/schema/index.ts';
import type { StudyData } from './common.ts';

let seq = 0;

export function mig(p: Partial<Migration> & { treatment: string }): Migration {
  seq++;
  return MigrationRecordSchema.parse({ id: `m${seq}`, rep: 0, vm: 'vm1', src: 'r1-h1', dst: 'r1-h2', status: 'completed', ...p });
}

/** Several migrations of one treatment, one per given total_ms (rep 0, 1, ...). */
export function migs(treatment: string, totals: number[], p: Partial<Migration> = {}, downtimes?: number[]): Migration[] {
  return totals.map((t, i) => mig({ treatment, rep: i, total_ms: t, downtime_observed_ms: downtimes?.[i] ?? null, ...p }));
}

export function run(name: string, migrations: Migration[], manifest: Partial<Manifest> = {}): RunDir {
  return inMemoryRun({ manifest: { name, ...manifest }, migrations });
}

export function study(...runs: { name: string; run: RunDir; workload?: Sample[] }[]): StudyData {
  return { runs: runs.map((r) => ({ name: r.name, run: r.run, workload: r.workload ?? [] })) };
}
