/** plans.jsonl: one line per executed plan (one repetition of a treatment): action times and completion. */
import { z } from 'zod';
import { nullableNumber, nullableString } from './fields.ts';

export const PlanActionSchema = z.looseObject({
  id: z.string(),
  kind: z.string(),
  vm: nullableString(),
  host: nullableString(),
  from: nullableString(),
  to: nullableString(),
  status: z.string(),
  start: nullableNumber(),
  end: nullableNumber(),
  reason: nullableString(),
});

export const PlanLineSchema = z.looseObject({
  experiment: z.string().default(''),
  treatment: z.string(),
  rep: z.number().int().nonnegative(),
  attempt: z.number().int().positive().default(1),
  kind: z.string(),
  k: nullableNumber(),
  /** Executor clock, epoch ms. */
  start: nullableNumber(),
  end: nullableNumber(),
  completion_ms: nullableNumber(),
  ok: z.boolean(),
  actions: z.array(PlanActionSchema).default([]),
});

export type PlanLine = z.output<typeof PlanLineSchema>;
export type PlanAction = z.output<typeof PlanActionSchema>;
