/** treatments.jsonl: per-treatment totals written after each treatment (energy, peak power per host). */
import { z } from 'zod';
import { nullableNumber } from './fields.ts';

export const HostTotalsSchema = z.looseObject({
  energy_j: z.number(),
  /** Share of the treatment's interval covered by power readings (0..1). */
  coverage: nullableNumber(),
  peak_w: nullableNumber(),
});

export const TreatmentLineSchema = z.looseObject({
  treatment: z.string(),
  t_start: z.string(),
  t_end: z.string(),
  migrations: z.number().int().nonnegative(),
  completed: z.number().int().nonnegative(),
  /** Summed over hosts; null without a power source. */
  energy_j: nullableNumber(),
  /** Peak of the summed host power (W); absent in older run directories. */
  peak_w: nullableNumber(),
  hosts: z.record(z.string(), HostTotalsSchema).default({}),
});

export type TreatmentLine = z.output<typeof TreatmentLineSchema>;
