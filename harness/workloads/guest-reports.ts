/**
 * Parses what the guest programs print on the serial console (MB-DIRTY,
 * MB-CPU, MB-STRESS, MB-MEMPRESSURE, MB-SWAP, MB-TRACE) into Samples.
 */
import type { Sample } from '../store/sample.ts';

/** Any periodic report of a running workload: the sign it is alive (e.g. after a migration). */
export const WORKLOAD_HEARTBEAT = /MB-(DIRTY|CPU|STRESS|MEMPRESSURE) /;

export type ReportKind = 'dirty' | 'cpu' | 'stress' | 'mempressure' | 'swap' | 'trace' | 'trace_done';

export interface GuestReport {
  kind: ReportKind;
  /** Every key=value pair of the line; numbers where they parse. */
  values: Record<string, number | string>;
}

const PREFIX: Array<[string, ReportKind]> = [
  ['MB-DIRTY ', 'dirty'],
  ['MB-CPU ', 'cpu'],
  ['MB-STRESS ', 'stress'],
  ['MB-MEMPRESSURE ', 'mempressure'],
  ['MB-SWAP ', 'swap'],
  ['MB-TRACE ', 'trace'],
  ['MB-TRACE-DONE ', 'trace_done'],
];

/** Parses one console line (the marker may follow kernel noise on the same line); null for other lines. */
export function parseGuestReport(line: string): GuestReport | null {
  for (const [p, kind] of PREFIX) {
    const i = line.indexOf(p);
    if (i < 0) continue;
    const values: Record<string, number | string> = {};
    for (const m of line.slice(i + p.length).matchAll(/([\w]+)=(\S+)/g)) {
      const n = Number(m[2]);
      values[m[1]] = m[2] !== '' && Number.isFinite(n) ? n : m[2];
    }
    return { kind, values };
  }
  return null;
}

export interface TracePoint {
  /** Measured window length, s. */
  windowS: number;
  targetS: number;
  dirtiedPages: number;
  dirtiedMiB: number;
  rep: number;
  procs: number;
}

/** An `MB-TRACE ...` line as a D(t) point; null for other lines. */
export function parseTraceLine(line: string): TracePoint | null {
  const r = parseGuestReport(line);
  if (!r || r.kind !== 'trace') return null;
  const v = r.values;
  const num = (k: string) => (typeof v[k] === 'number' ? (v[k] as number) : NaN);
  const p = {
    windowS: num('window_s'),
    targetS: num('target_s'),
    dirtiedPages: num('dirtied_pages'),
    dirtiedMiB: num('dirtied_mib'),
    rep: num('rep'),
    procs: num('procs'),
  };
  return Number.isFinite(p.windowS) && Number.isFinite(p.dirtiedPages) ? { ...p, dirtiedMiB: (p.dirtiedPages * 4096) / 2 ** 20 } : null;
}

/**
 * Sample for a report line. Traces become measurement 'dirty_trace' (tags vm,
 * workload; fields window_s, dirtied_mib — what analysis reads for the
 * hot/cold fit); workload reports become 'workload_report' with kind tag;
 * MB-DIRTY is left to the runner's existing 'dirty_rate' collector.
 */
export function reportSample(line: string, tags: Record<string, string>, tMs: number): Sample | null {
  const t = new Date(tMs).toISOString();
  const tr = parseTraceLine(line);
  if (tr) {
    return {
      t,
      measurement: 'dirty_trace',
      tags,
      fields: {
        window_s: tr.windowS,
        target_s: tr.targetS,
        dirtied_pages: tr.dirtiedPages,
        dirtied_mib: tr.dirtiedMiB,
        rep: tr.rep,
        procs: tr.procs,
      },
    };
  }
  const r = parseGuestReport(line);
  if (!r || r.kind === 'dirty' || r.kind === 'trace' || r.kind === 'trace_done') return null;
  const fields: Sample['fields'] = {};
  for (const [k, v] of Object.entries(r.values)) fields[k] = v;
  return { t, measurement: 'workload_report', tags: { ...tags, kind: r.kind }, fields };
}

/** Something that delivers console lines (VmProcess.onSerialLine). */
export interface SerialSource {
  onSerialLine(listener: (line: string) => void): () => void;
}

/**
 * Turns a VM's console reports into samples for as long as it runs; returns
 * the unsubscribe function. Call again for the destination after a migration.
 */
export function watchGuestReports(src: SerialSource, tags: Record<string, string>, emit: (s: Sample[]) => void): () => void {
  return src.onSerialLine((line) => {
    const s = reportSample(line, tags, Date.now());
    if (s) emit([s]);
  });
}
