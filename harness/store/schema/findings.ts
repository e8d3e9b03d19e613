/**
 * findings.json: what `migbench reproduce <study>` concluded, written into the
 * study directory next to the run directories of its specs. One entry per
 * finding of the paper: the claim, the paper's numbers, ours, the verdict and
 * why. Analysis writes it and reads it back with this schema.
 */
import { z } from 'zod';

export const FINDINGS_SCHEMA_VERSION = 1;

/**
 * holds / does not hold: our numbers agree / disagree with the claim;
 * differs: they disagree for a known reason of this testbed (hypervisor, scale), stated in `reason`;
 * inconclusive: too few or too noisy observations to say; not run: nothing here measures it yet.
 */
export const VERDICTS = ['holds', 'does not hold', 'differs', 'inconclusive', 'not run'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** A statistical test behind a verdict (e.g. Welch's t for "LOAD has no effect"). */
export const FindingTestSchema = z.looseObject({
  name: z.string(),
  /** p-value where the test has one. */
  p: z.number().nullable().default(null),
  /** What was tested, e.g. "95 % CI of the difference of means inside +-10 % of the baseline". */
  detail: z.string().default(''),
});

export const FindingSchema = z.looseObject({
  /** Stable short id within the study, e.g. 'load-no-effect'. */
  id: z.string(),
  claim: z.string(),
  /** The paper's numbers for the claim, as text. */
  paper: z.string(),
  /** Our numbers that test it, as text. */
  measured: z.string(),
  verdict: z.enum(VERDICTS),
  reason: z.string(),
  /** The same numbers in machine-readable form (null: not measured). */
  numbers: z.record(z.string(), z.number().nullable()).default({}),
  test: FindingTestSchema.nullable().default(null),
});

export const FindingsFileSchema = z.looseObject({
  schema_version: z.number().int().positive(),
  study: z.string(),
  /** Seed paper, e.g. '002'. */
  seed: z.string(),
  title: z.string(),
  quick: z.boolean(),
  /** ISO time the findings were evaluated. */
  evaluated: z.string(),
  /** Run directories evaluated, relative to the study directory. */
  runs: z.array(z.string()),
  /** Wall time of the whole study (runs + evaluation), s; null when only evaluated. */
  wall_s: z.number().nullable().default(null),
  findings: z.array(FindingSchema),
});

export type Finding = z.output<typeof FindingSchema>;
export type FindingTest = z.output<typeof FindingTestSchema>;
export type FindingsFile = z.output<typeof FindingsFileSchema>;
