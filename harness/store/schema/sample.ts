/**
 * samples/<measurement>.jsonl: one time-series point a line, as also sent to
 * InfluxDB. `t` is an ISO-8601 UTC timestamp with at least millisecond
 * resolution. Tags are low-cardinality ids (experiment, treatment, rep, host,
 * vm, migration, measurement source); everything measured goes in fields.
 */
import { z } from 'zod';

export const SampleSchema = z.object({
  t: z.string().min(1),
  measurement: z.string().min(1),
  tags: z.record(z.string(), z.string()).default({}),
  fields: z
    .record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()]))
    .refine((f) => Object.keys(f).length > 0, { message: 'no fields (a sample without a measured value)' }),
});

export type Sample = z.output<typeof SampleSchema>;

/**
 * The same check as SampleSchema without building issue objects: analysis
 * streams millions of samples and zod costs ~6 µs a line. Lines that fail
 * this are re-checked with SampleSchema for the located message.
 */
export function isSample(v: unknown): v is Sample {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  if (typeof s.t !== 'string' || s.t === '' || typeof s.measurement !== 'string' || s.measurement === '') return false;
  const tags = s.tags;
  if (tags !== undefined) {
    if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) return false;
    for (const k in tags) if (typeof (tags as Record<string, unknown>)[k] !== 'string') return false;
  }
  const f = s.fields;
  if (typeof f !== 'object' || f === null || Array.isArray(f)) return false;
  let n = 0;
  for (const k in f) {
    const x = (f as Record<string, unknown>)[k];
    if (x !== null && typeof x !== 'number' && typeof x !== 'string' && typeof x !== 'boolean') return false;
    n++;
  }
  return n > 0;
}
