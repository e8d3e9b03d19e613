/**
 * What libvirt says about a migration, as data: `virsh domjobinfo --rawstats` (running and
 * completed job) and `virsh qemu-monitor-event --timestamp` lines, turned into the
 * query-migrate answers and QMP events a MigrationObservation holds, so deriveMigration does
 * the numbers for both back ends. Pure: unit-tested against recorded virsh output.
 */
import type { ObservedEvent, QueryMigrateAnswer } from '../../migration/derive.ts';

/** virDomainJobType, as `Job type: <n>` in --rawstats output. */
const JOB_TYPES = ['none', 'bounded', 'unbounded', 'completed', 'failed', 'cancelled'] as const;
export type JobType = (typeof JOB_TYPES)[number];

export interface JobStats {
  type: JobType | null;
  /** Typed parameters by name (numbers where they parse as one). */
  fields: Record<string, number | string>;
}

/** Parses `virsh domjobinfo --rawstats` output (`Job type: <n>`, then `<field>: <value>` lines). */
export function parseJobStats(text: string): JobStats {
  let type: JobType | null = null;
  const fields: Record<string, number | string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const t = /^Job type:\s*(\S+)/i.exec(line);
    if (t) {
      const n = Number(t[1]);
      type = Number.isInteger(n) ? (JOB_TYPES[n] ?? null) : (JOB_TYPES.find((j) => j === t[1].toLowerCase()) ?? null);
      continue;
    }
    const m = /^([a-z][a-z0-9_.]*):\s*(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2].trim();
    fields[m[1]] = /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  }
  return { type, fields };
}

const num = (f: Record<string, number | string>, k: string): number | undefined =>
  typeof f[k] === 'number' ? (f[k] as number) : undefined;

/**
 * A job's statistics as a query-migrate answer: memory_processed is QEMU's ram.transferred,
 * memory_iteration its dirty-sync-count, memory_dirty_rate its dirty-pages-rate (pages/s),
 * downtime and setup_time QEMU's own. total-time is libvirt's time_elapsed: the whole libvirt job,
 * which also covers starting the destination QEMU (QEMU's own total-time is not exposed).
 */
export function answerFromStats(s: JobStats, status?: string): QueryMigrateAnswer {
  const f = s.fields;
  const st = status ?? (s.type === 'unbounded' || s.type === 'bounded' ? 'active' : (s.type ?? undefined));
  const a: QueryMigrateAnswer = { ...(st ? { status: st } : {}) };
  const set = <K extends keyof QueryMigrateAnswer>(k: K, v: QueryMigrateAnswer[K] | undefined) => {
    if (v !== undefined) a[k] = v;
  };
  set('total-time', num(f, 'time_elapsed'));
  // while the job runs, libvirt's `downtime` is QEMU's expected downtime; afterwards the measured one
  if (st === 'active') set('expected-downtime', num(f, 'downtime'));
  else set('downtime', num(f, 'downtime'));
  set('setup-time', num(f, 'setup_time'));
  const ram: Record<string, number> = {};
  const map: [string, string][] = [
    ['memory_processed', 'transferred'],
    ['memory_remaining', 'remaining'],
    ['memory_total', 'total'],
    ['memory_dirty_rate', 'dirty-pages-rate'],
    ['memory_iteration', 'dirty-sync-count'],
    ['memory_constant', 'duplicate'],
    ['memory_normal', 'normal'],
    ['memory_normal_bytes', 'normal-bytes'],
    ['memory_page_size', 'page-size'],
    ['memory_postcopy_requests', 'postcopy-requests'],
  ];
  for (const [from, to] of map) {
    const v = num(f, from);
    if (v !== undefined) ram[to] = v;
  }
  const bps = num(f, 'memory_bps');
  if (bps !== undefined) ram.mbps = (bps * 8) / 1e6;
  if (Object.keys(ram).length) a.ram = ram;
  const err = f.errmsg;
  if (typeof err === 'string' && err) a['error-desc'] = err;
  return a;
}

/**
 * One `virsh qemu-monitor-event --timestamp` line (run with TZ=UTC):
 * `2026-11-30 20:31:54.846+0000: event STOP for domain 'name': <null>` (the time is QEMU's own
 * event timestamp, to the millisecond). Null for other lines or another domain.
 */
export function parseMonitorEvent(
  line: string,
  domain: string,
): { event: string; timestampMs: number; data: Record<string, unknown> } | null {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\.(\d{1,9})([+-]\d\d):?(\d\d)?: event (\S+) for domain '(.*)': (.*)$/.exec(line.trim());
  if (!m || m[7] !== domain) return null;
  const frac = Number(`0.${m[3]}`);
  const s = Date.parse(`${m[1]}T${m[2]}${m[4]}:${m[5] ?? '00'}`);
  if (!Number.isFinite(s)) return null;
  let data: Record<string, unknown> = {};
  if (m[8] !== '<null>') {
    try {
      const d = JSON.parse(m[8]) as unknown;
      if (d && typeof d === 'object') data = d as Record<string, unknown>;
    } catch {
      data = { raw: m[8] };
    }
  }
  return { event: m[6], timestampMs: s + frac * 1000, data };
}

/** Line-wise splitter for streamed output (the last partial line is kept until its newline). */
export function lineSplitter(onLine: (l: string) => void): (chunk: string) => void {
  let buf = '';
  return (chunk) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  };
}

export type { ObservedEvent };
