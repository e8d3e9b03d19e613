/**
 * params.json: calibrated model parameters and where they came from, so a
 * prediction can say which migrations calibrated it and refuse to call
 * those "validated". Written by `migbench fit --out`, read by `predict`
 * and `plan advise`.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { UserError } from '../../harness/util/errors.ts';
import { writeJsonAtomic } from '../../harness/util/atomic-write.ts';

export const PARAMS_VERSION = 1;

const Interval = z.object({ low: z.number().nullable(), high: z.number().nullable() });

export const HotColdEntry = z.object({
  /** Workload label as in migrations.jsonl. */
  workload: z.string(),
  HPs: z.number().nonnegative(),
  HPd: z.number().nonnegative(),
  CPr: z.number().nonnegative(),
  HPr: z.number().nonnegative(),
  r2: z.number().nullable(),
  n: z.number().int(),
  method: z.enum(['curve', 'durations']),
  /** Memory in use measured for this workload (median over calibration migrations), MiB; null when unknown. */
  mu_mib: z.number().positive().nullable(),
});

export const EnergyEntry = z.object({
  group: z.string(),
  alpha: z.number(),
  beta: z.number(),
  alpha_ci: Interval,
  beta_ci: Interval,
  r2: z.number().nullable(),
  n: z.number().int(),
});

/** A calibration source: one run directory and what of it was used. */
export const Source = z.object({
  run_dir: z.string(),
  name: z.string(),
  spec_hash: z.string().nullable(),
  /** Migrations whose durations fitted hot/cold parameters (workloads without a trace). */
  duration_migrations: z.array(z.string()),
  /** Migrations whose energy fitted alpha/beta. */
  energy_migrations: z.array(z.string()),
  /** Workloads whose D(t) trace in this run gave their hot/cold parameters. */
  traced_workloads: z.array(z.string()),
});

export const Params = z.object({
  migbench_params: z.literal(PARAMS_VERSION),
  created_at: z.string(),
  /** Link goodput as a share of the nominal shaped rate. */
  goodput: z.number().positive().max(1),
  /** Per-sync floor of the QEMU-like model (s). */
  sync_s: z.number().nonnegative(),
  /** QEMU setup before the first page (median over calibration migrations), s; absent in older files. */
  setup_s: z.number().nonnegative().nullable().optional(),
  /**
   * Harness time per plan action outside QEMU's total time (starting the destination, QMP), median over
   * calibration migrations, s: the plan advisor adds it to every migration. Absent in older files.
   */
  action_overhead_s: z.number().nonnegative().nullable().optional(),
  hotcold: z.array(HotColdEntry),
  energy: z.array(EnergyEntry),
  sources: z.array(Source),
});
export type ParamsT = z.infer<typeof Params>;
export type HotColdEntryT = z.infer<typeof HotColdEntry>;

export function writeParams(path: string, p: ParamsT): void {
  writeJsonAtomic(path, Params.parse(p));
}

export function readParams(path: string): ParamsT {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(
      `${path}: cannot read calibrated parameters (${(e as Error).message}); write them with 'migbench fit <runDir...> --out ${path}'`,
    );
  }
  const r = Params.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new UserError(
      `${path}: ${i.path.join('.') || '(top level)'}: ${i.message}; is it a params.json written by 'migbench fit --out'?`,
    );
  }
  return r.data;
}

/** Key of a migration across run directories. */
export function migrationKey(runDir: string, id: string): string {
  return `${runDir}#${id}`;
}

/** Migrations that calibrated a model: predicting them with it is in-sample. */
export function calibrationKeys(p: ParamsT, model: 'duration' | 'energy'): Set<string> {
  return new Set(
    p.sources.flatMap((s) => (model === 'duration' ? s.duration_migrations : s.energy_migrations).map((id) => migrationKey(s.run_dir, id))),
  );
}
