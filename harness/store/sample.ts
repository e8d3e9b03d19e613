/**
 * One time-series point, as stored in samples/*.jsonl and sent to InfluxDB.
 * `t` is an ISO-8601 UTC timestamp with at least millisecond resolution.
 * Tags are low-cardinality ids (experiment, treatment, rep, host, vm,
 * migration, measurement source); everything measured goes in fields.
 */
export interface Sample {
  t: string;
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, number | string | boolean | null>;
}
