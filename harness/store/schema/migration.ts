/**
 * migrations.jsonl: one line per measured migration. The harness writes
 * `MigrationRecord`; analysis reads each line with `MigrationRecordSchema`.
 * Unknown keys are kept (loose objects), so a record with fields added by a
 * newer harness still reads; fields older harnesses did not write default.
 */
import { z } from 'zod';
import { nullableBoolean, nullableNumber, nullableString } from './fields.ts';
import { GuestStartSchema } from './guest-start.ts';

export const MIGRATION_STATUSES = ['completed', 'failed', 'cancelled'] as const;
export type MigrationStatus = (typeof MIGRATION_STATUSES)[number];

/** The plan action a migration belongs to and its executor times (epoch ms). */
export const PlanRefSchema = z.looseObject({
  kind: z.string(),
  k: nullableNumber(),
  action_id: z.string().default(''),
  start_ms: nullableNumber(),
  end_ms: nullableNumber(),
});

export const HealthSchema = z.looseObject({
  answers: nullableBoolean(),
  workload_running: nullableBoolean(),
  problems: z.array(z.string()).default([]),
});

/** The guest's disk content check around a block migration: checksums written before, read back after. */
export const DiskCheckSchema = z.looseObject({
  bytes: nullableNumber(),
  sha256_before: nullableString(),
  sha256_after: nullableString(),
  /** null: not checked (the migration failed, or the guest could not run the check). */
  verified: nullableBoolean(),
});

/** Block migration (`migration.mode: block`): the disk mirror's bytes and phases, apart from RAM (total_ms etc.). */
export const BlockMigrationSchema = z.looseObject({
  /** Disk size as the mirror job counts it (query-block-jobs `len`), and its progress at the end (`offset`). */
  disk_bytes: nullableNumber(),
  mirror_bytes: nullableNumber(),
  /** Bytes allocated in the destination's image after the mirror (qemu-img actual-size): the data copied, zeros skipped. */
  dst_allocated_bytes: nullableNumber(),
  /** blockdev-mirror sent (harness clock), BLOCK_JOB_READY, BLOCK_JOB_COMPLETED after the cancel (QEMU clock). */
  t_mirror_start: nullableString(),
  t_mirror_ready: nullableString(),
  t_mirror_done: nullableString(),
  /** Bulk copy: mirror start -> READY (disk in sync). */
  mirror_ms: nullableNumber(),
  /** READY -> the RAM migration's migrate command. */
  ready_to_migrate_ms: nullableNumber(),
  /** Switchover: block-job-cancel sent after the RAM migration completed -> BLOCK_JOB_COMPLETED. */
  switchover_ms: nullableNumber(),
  /** Whole block migration: mirror start -> mirror done (RAM migration inside it). */
  total_ms: nullableNumber(),
  content: DiskCheckSchema.nullable().default(null),
});

/** One requested migration feature: asked for, seen engaging (null: no evidence either way), and its QMP evidence. */
const featureBase = { requested: z.boolean().default(true), engaged: nullableBoolean() };
export const FeaturesSchema = z.looseObject({
  postcopy: z
    .looseObject({
      ...featureBase,
      /** migrate-start-postcopy sent (harness clock) and its delay after the migrate command. */
      t_switch: nullableString(),
      switch_after_ms: nullableNumber(),
      /** Source went postcopy-active (QEMU clock). */
      t_postcopy: nullableString(),
      /** Guest paused around the switch: STOP on the source -> RESUME on the destination. */
      blackout_ms: nullableNumber(),
      /** Pages the destination asked for (faults) and bytes sent in post-copy. */
      requests: nullableNumber(),
      postcopy_bytes: nullableNumber(),
    })
    .optional(),
  multifd: z.looseObject({ ...featureBase, channels: nullableNumber(), multifd_bytes: nullableNumber() }).optional(),
  xbzrle: z
    .looseObject({
      ...featureBase,
      cache_size: nullableNumber(),
      /** Pages sent xbzrle-encoded (cache hits that encoded), their bytes, cache misses, overflows. */
      pages: nullableNumber(),
      bytes: nullableNumber(),
      cache_miss: nullableNumber(),
      cache_miss_rate: nullableNumber(),
      encoding_rate: nullableNumber(),
      overflow: nullableNumber(),
    })
    .optional(),
  auto_converge: z
    .looseObject({
      ...featureBase,
      max_throttle_pct: nullableNumber(),
      /** cpu-throttle-percentage over time: [ms after the migrate command, %] at each change. */
      throttle: z.array(z.tuple([z.number(), z.number()])).default([]),
    })
    .optional(),
});

export const MigrationRecordSchema = z.looseObject({
  id: z.string(),
  experiment: z.string().default(''),
  treatment: z.string(),
  rep: z.number().int().nonnegative(),
  /** Attempt of the campaign unit (a redone unit has a higher one); absent before attempts were counted. */
  attempt: z.number().int().positive().optional(),
  vm: z.string(),
  src: z.string(),
  dst: z.string(),
  status: z.enum(MIGRATION_STATUSES),
  reason: nullableString(),
  /** Part of a unit cut off by a crash: not an observation. */
  partial: z.boolean().default(false),
  partial_reason: z.string().optional(),
  t_cmd: nullableString(),
  t_stop: nullableString(),
  t_resume: nullableString(),
  t_done: nullableString(),
  total_ms: nullableNumber(),
  total_ms_harness: nullableNumber(),
  downtime_reported_ms: nullableNumber(),
  downtime_event_ms: nullableNumber(),
  downtime_observed_ms: nullableNumber(),
  /** ± of downtime_observed_ms from the probe's send times (one probe interval on schedule); absent in older records. */
  downtime_observed_uncertainty_ms: z.number().nullable().optional(),
  preop_ms: nullableNumber(),
  postop_ms: nullableNumber(),
  setup_ms: nullableNumber(),
  transferred_bytes: nullableNumber(),
  passes: nullableNumber(),
  /** Energy of source + destination above idle over the migration (J), and its parts. */
  energy_j: nullableNumber(),
  energy_src_j: z.number().nullable().optional(),
  energy_dst_j: z.number().nullable().optional(),
  /** Share of the migration interval covered by power readings on both hosts (0..1). */
  energy_coverage: z.number().nullable().optional(),
  link_rate_mbit: nullableNumber(),
  memory_mib: nullableNumber(),
  workload: z.string().default(''),
  downtime_limit_ms: nullableNumber(),
  probe_interval_ms: nullableNumber(),
  /** The probe's own loss up to this migration: probes sent, and lost, while no migration of its VM ran. */
  probe_outside: z.object({ sent: z.number(), lost: z.number() }).nullable().optional(),
  /** The probe's mean CPU share of one core (%) from its start to this migration's end. */
  probe_cpu_pct: z.number().nullable().optional(),
  /** null: not checked (e.g. the migration failed). Never read as true. */
  healthy: nullableBoolean(),
  health: HealthSchema.default({ answers: null, workload_running: null, problems: [] }),
  source_running: nullableBoolean(),
  migration_uri: z.string().default(''),
  /**
   * Clock of dst minus clock of src (ms) as measured over SSH, already taken out of the event times
   * (t_stop/t_resume, downtime_event_ms), and its bound; absent when both sides share one clock (local driver).
   */
  clock_offset_ms: z.number().nullable().optional(),
  clock_uncertainty_ms: z.number().nullable().optional(),
  plan: PlanRefSchema.optional(),
  plan_completion_ms: z.number().nullable().optional(),
  /** When post-copy was switched on (QMP event time), null when it never was. */
  t_postcopy: z.string().nullable().optional(),
  /** Migration features asked for in the spec, each with whether it engaged and the QMP evidence; absent in older records. */
  features: FeaturesSchema.optional(),
  /** Block migration's disk phases and content check; absent unless migration.mode was block and the VM had a disk. */
  block: BlockMigrationSchema.nullable().optional(),
  /** How the migrated guest was started for its treatment (restored or cold-booted); absent in older records. */
  guest_start: GuestStartSchema.optional(),
  /**
   * Physics and sanity checks that failed (harness/migration/flags.ts), each with its reason. Absent (not
   * empty) in records written before the harness checked them: analysis then computes them (analysis/flags.ts).
   */
  flags: z.array(z.object({ code: z.string(), reason: z.string() })).optional(),
});

/** What the harness writes (every field present) and analysis gets after parsing. */
export type MigrationRecord = z.output<typeof MigrationRecordSchema>;
export type PlanRef = z.output<typeof PlanRefSchema>;
export type Features = z.output<typeof FeaturesSchema>;
export type BlockMigration = z.output<typeof BlockMigrationSchema>;
export type DiskCheck = z.output<typeof DiskCheckSchema>;

/** Numeric per-migration responses analyses can use (in the order tables and CSV columns show them). */
export const NUMERIC_METRICS = [
  'total_ms',
  'downtime_reported_ms',
  'downtime_event_ms',
  'downtime_observed_ms',
  'preop_ms',
  'postop_ms',
  'transferred_bytes',
  'passes',
  'setup_ms',
  'energy_j',
] as const;
export type NumericMetric = (typeof NUMERIC_METRICS)[number];
