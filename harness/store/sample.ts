/** A time-series point as stored in samples/*.jsonl and sent to InfluxDB; defined in schema/sample.ts. */
export type { Sample } from './schema/sample.ts';
