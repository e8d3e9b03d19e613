/**
 * manifest.json: what was run, on what, by which harness. Written when the
 * run starts and replaced (atomically) as facts arrive (QEMU version, shaping
 * mechanisms, power poller report, end time).
 *
 * `schema_version` versions the whole run directory: 2 is this layout; a
 * manifest without it was written before the field existed (version 1, still
 * read). Analysis refuses a newer version rather than misreading it.
 */
import { z } from 'zod';
import { DutyCycleSchema } from './timing.ts';

export const MANIFEST_SCHEMA_VERSION = 2;

/** Per link, the mechanisms that shaped it ('htb', 'htb+delayfwd'); older manifests nested them as objects. */
function shapingText(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, typeof x === 'string' ? x : JSON.stringify(x)]));
}

export const TreatmentEntrySchema = z.looseObject({
  id: z.string(),
  /** Factor path -> level as in the spec (a level may be an object, e.g. a whole plan). */
  levels: z.record(z.string(), z.unknown()).default({}),
  workload: z.string().optional(),
});

export const CompareSettingsSchema = z.looseObject({
  threshold: z.number().optional(),
  alpha: z.number().optional(),
  metrics: z.array(z.string()).optional(),
});

const manifestShape = {
  schema_version: z.number().int().positive().default(1),
  name: z.string(),
  /** The resolved spec. */
  spec: z.record(z.string(), z.unknown()).default({}),
  spec_file: z.string().optional(),
  spec_text: z.string().optional(),
  spec_hash: z.string().optional(),
  harness: z.looseObject({ version: z.string().optional(), commit: z.string().nullable().optional() }).optional(),
  started_at: z.string().optional(),
  ended_at: z.string().nullable().optional(),
  resumed_at: z.array(z.string()).optional(),
  factors: z.record(z.string(), z.array(z.unknown())).default({}),
  repetitions: z.number().optional(),
  order: z.unknown().optional(),
  treatments: z.array(TreatmentEntrySchema).default([]),
  power_source: z.enum(['measured', 'modelled', 'none']).optional(),
  power_model: z.unknown().optional(),
  power_poller: z.record(z.string(), z.unknown()).optional(),
  /** Per host, the idle power energies are taken above (W): the model's, or measured from the BMC before any guest ran. */
  power_idle_w: z.record(z.string(), z.number()).optional(),
  shaping_mechanisms: z.preprocess(shapingText, z.record(z.string(), z.string())).default({}),
  compare: CompareSettingsSchema.optional(),
  qemu_version: z.string().optional(),
  accelerator: z.string().optional(),
  accelerator_reason: z.string().optional(),
  host_kernel: z.string().optional(),
  guest_kernel: z.string().optional(),
  guest_image: z.string().optional(),
  influx: z.unknown().optional(),
  /** Samples that could not be appended (disk full), per measurement file. */
  samples_not_recorded: z.record(z.string(), z.number()).optional(),
  /** Duty cycle of each run/resume invocation: time migrating / wall time and the dead-time breakdown (timing.jsonl). */
  timing: z.array(DutyCycleSchema).optional(),
};

/** Unknown keys are kept: a manifest with fields added later still reads. */
export const ManifestSchema = z.looseObject(manifestShape);
/** The known fields only (for views that replace some of them, where an index signature would swallow the rest). */
export const ManifestFieldsSchema = z.object(manifestShape);

export type Manifest = z.output<typeof ManifestSchema>;
export type ManifestFields = z.output<typeof ManifestFieldsSchema>;
export type TreatmentEntry = z.output<typeof TreatmentEntrySchema>;
export type CompareSettings = z.output<typeof CompareSettingsSchema>;
