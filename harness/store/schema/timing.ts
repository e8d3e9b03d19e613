/**
 * timing.jsonl: where a campaign's wall time went outside its migrations.
 * One line per span the runner measured between migrations (testbed setup,
 * guest start, warm-up, pause, energy wait, records, teardown, ...), with
 * the controller's clock; the duty cycle (time migrating / wall time) and its
 * dead-time breakdown are derived from these and the migration records
 * (harness/experiment/duty-cycle.ts). A manifest's `timing` holds the
 * derivation of each `run`/`resume` invocation.
 */
import { z } from 'zod';
import { nullableNumber, nullableString } from './fields.ts';

/** What a span was spent on (open set: lines of kinds added later still read). */
export const TIMING_KINDS = [
  'setup', // image, accelerator probe, QEMU version, manifest: before the first treatment
  'testbed', // building or reusing the treatment's testbed (namespaces, links, shaping)
  'power-start', // starting the power poller
  'guest-start', // booting or restoring a guest until it is ready
  'probe-start', // starting a guest's availability probe
  'clients-start', // starting a guest's clients
  'warmup', // the configured warm-up
  'pause', // the configured pause before each repetition
  'migrate-prepare', // a migration step before its migrate command (destination QEMU started, capabilities set)
  'migrate-wrapup', // a migration step after its window (probe loss settled, source ended)
  'energy-wait', // waiting for a power reading past a migration's end (while the next migration runs, if any)
  'settle', // after the last unit of a treatment: its records' heartbeat checks and power readings
  'record', // writing and syncing the unit's records and state
  'treatment-totals', // per-treatment energy and peak power
  'teardown', // stopping the treatment's guests, probes, clients
  'close', // stopping the poller and the testbed at the end
] as const;
export type TimingKind = (typeof TIMING_KINDS)[number];

export const TimingLineSchema = z.looseObject({
  kind: z.string(),
  treatment: nullableString(),
  rep: nullableNumber(),
  vm: nullableString(),
  /** Controller wall clock, epoch ms. */
  start_ms: z.number(),
  end_ms: z.number(),
});
export type TimingLine = z.output<typeof TimingLineSchema>;

/** The duty cycle of one invocation (manifest.timing[]). */
export const DutyCycleSchema = z.looseObject({
  start_ms: z.number(),
  end_ms: z.number(),
  wall_ms: z.number(),
  /** Union of the migrations' t_cmd..t_done windows (overlapping migrations count once). */
  migrating_ms: z.number(),
  migrations: z.number().int().nonnegative(),
  /** migrating_ms / wall_ms (0..1); null for an empty wall time. */
  duty_cycle: z.number().nullable(),
  /** Per kind, span time outside the migration windows, largest first. */
  dead_ms: z.array(z.object({ kind: z.string(), ms: z.number(), count: z.number().int() })),
  /** Wall time neither migrating nor in any measured span. */
  unaccounted_ms: z.number(),
});
export type DutyCycle = z.output<typeof DutyCycleSchema>;
