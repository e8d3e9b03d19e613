/**
 * The timeline of one migration (issue 15), as a pure derivation from its
 * record and the samples recorded around it: transferred and remaining bytes,
 * throughput from transferred deltas, passes, dirty rate, probe RTT with the
 * outages, STOP / RESUME / end markers and the power of both hosts. Times are
 * seconds relative to the migrate command (t_cmd). `collectTimelineSamples`
 * is the only part that reads the run directory; rendering is in
 * report/timeline-plot.ts.
 */
import { basename } from 'node:path';
import { computeOutages, type ProbeRecord } from '../harness/native/programs.ts';
import { isoToMicros } from '../harness/store/influx.ts';
import { parseIsoMs } from '../harness/util/time.ts';
import type { Sample } from '../harness/store/schema/index.ts';
import { median } from './stats/descriptive.ts';
import { observations, streamSamples, type Migration, type RunDir } from './rundir.ts';
import { lineTime, numberSample, type NumberLine } from './load-sample-line.ts';

/** QEMU's dirty-pages-rate is in pages/s; x86 guests (all migbench runs) use 4 KiB pages. */
export const PAGE_BYTES = 4096;
const MiB = 1024 * 1024;

export type TimelinePanel = 'bytes' | 'throughput' | 'dirty' | 'probe' | 'power';
export type MarkerKind = 'STOP' | 'RESUME' | 'postcopy' | 'completed' | 'cancelled' | 'failed';

export interface TimelineMarker {
  kind: MarkerKind;
  /** s since t_cmd. */
  t: number;
  /** Where the time came from: a QMP event or the record. */
  source: 'event' | 'record';
}

export interface TimelineOutage {
  /** Send time of the first lost probe, s since t_cmd. */
  t0: number;
  /** t0 + the outage as the record computes it (harness/native/programs.ts computeOutages). */
  t1: number;
  ms: number;
  /** ± of ms from the send times around the loss run (one probe interval on schedule). */
  uncertaintyMs: number;
  lost: number;
}

export interface Timeline {
  id: string;
  vm: string;
  src: string;
  dst: string;
  status: Migration['status'];
  reason: string | null;
  /** The migrate command, epoch ms: time 0 of every series. */
  t0Ms: number;
  /** The window drawn, s since t_cmd. */
  from: number;
  to: number;
  linkRateMbit: number | null;
  probeIntervalMs: number | null;
  bytes: { t: number; transferredMiB: number; remainingMiB: number | null }[];
  /** Shortest interval a throughput value is averaged over, s. */
  throughputWindowS: number;
  /** Mean throughput from the transferred bytes of progress samples at least throughputWindowS apart. */
  throughput: { t0: number; t1: number; mbit: number }[];
  /** Pass n runs from its MIGRATION_PASS event (else the first progress sample with dirty_sync_count n) to the next pass or the end. */
  passes: { pass: number; t0: number; t1: number }[];
  dirty: { t: number; mibS: number; source: 'QEMU' | 'guest' }[];
  /** Answered probes: send time and RTT. */
  probe: { t: number; rttMs: number }[];
  outages: TimelineOutage[];
  markers: TimelineMarker[];
  power: { t: number; host: string; role: 'source' | 'destination'; watts: number }[];
  /** Why a panel has no data (absent when it has some). */
  missing: Partial<Record<TimelinePanel, string>>;
}

/** The samples a timeline is derived from, already selected for the migration (collectTimelineSamples). */
export interface TimelineSamples {
  progress: Sample[];
  events: Sample[];
  probe: Sample[];
  power: Sample[];
  dirty: Sample[];
}

/** Epoch ms of an ISO timestamp with its µs digits kept (QMP events and probes carry them). */
export function isoMs(s: string): number {
  try {
    return Number(isoToMicros(s)) / 1000;
  } catch {
    return NaN;
  }
}
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const recMs = (s: string | null | undefined): number | null => (s ? isoMs(s) : null);

/** Samples are read from this long before t_cmd and after the end, so outages and power lines crossing the window keep their shape. */
const COLLECT_MARGIN_MS = 10_000;

/** Epoch ms span whose samples a migration's timeline needs (t_cmd null: no timeline). */
export function collectSpan(m: Migration): { fromMs: number; toMs: number } | null {
  const cmd = recMs(m.t_cmd);
  if (cmd === null || !Number.isFinite(cmd)) return null;
  const ends = [recMs(m.t_done), recMs(m.t_resume), num(m.plan?.end_ms ?? null)].filter(
    (x): x is number => x !== null && Number.isFinite(x),
  );
  const end = ends.length ? Math.max(...ends) : cmd + 3_600_000;
  return { fromMs: cmd - COLLECT_MARGIN_MS, toMs: end + COLLECT_MARGIN_MS };
}

/** Does a sample tagged with an attempt belong to the record's attempt? (untagged samples and records always match) */
const sameAttempt = (s: Sample, m: Migration) =>
  m.attempt === undefined || s.tags.attempt === undefined || s.tags.attempt === String(m.attempt);

/** Power of the migration's two hosts in its span, tagged with its treatment or none (readings carry the treatment running then). */
function powerKept(s: Pick<Sample, 't' | 'tags'>, m: Migration, span: { fromMs: number; toMs: number }): boolean {
  if (s.tags.host !== m.src && s.tags.host !== m.dst) return false;
  if (s.tags.treatment && s.tags.treatment !== m.treatment) return false;
  const t = parseIsoMs(s.t);
  return t >= span.fromMs && t <= span.toMs;
}

/** Power readings of a timeline gathered by another pass over power.jsonl (see timelinePowerTap). */
const tapped = new WeakMap<RunDir, { m: Migration; power: Sample[] }>();

/**
 * For a pass over the samples that reads power.jsonl anyway (analyzeRun's):
 * `onSample` keeps the power readings the timeline of the report's migration
 * (representativeMigration) needs and `done` hands them to
 * collectTimelineSamples, so the report does not read the run's largest file
 * again. The same readings, in the same order, as its own pass would keep.
 */
export function timelinePowerTap(run: RunDir): {
  onSample: (s: Sample, file: string) => void;
  /** The same for a line streamSampleLines read as a NumberLine (a sample is made only for a kept reading). */
  onNumber: (r: Readonly<NumberLine>, file: string) => void;
  done: () => void;
} | null {
  const m = representativeMigration(run);
  const span = m && collectSpan(m);
  if (!m || !span) return null;
  const power: Sample[] = [];
  return {
    onSample: (s, file) => {
      if (s.measurement === 'power' && powerKept(s, m, span) && basename(file) === 'power.jsonl') power.push(s);
    },
    onNumber: (r, file) => {
      if (r.measurement === 'power' && powerKept(r, m, span) && basename(file) === 'power.jsonl') power.push(numberSample(r));
    },
    done: () => tapped.set(run, { m, power }),
  };
}

/**
 * One pass over the sample files, keeping what the timeline of `m` needs:
 * its progress and QMP events (by migration tag), the probe and dirty rate of
 * its VM and the power of its two hosts in the span around it.
 */
export async function collectTimelineSamples(run: RunDir, m: Migration): Promise<TimelineSamples> {
  const out: TimelineSamples = { progress: [], events: [], probe: [], power: [], dirty: [] };
  const span = collectSpan(m);
  if (!span) return out;
  // millisecond precision is enough to select (parseIsoMs has a fast path for the common form)
  const inSpan = (s: Sample) => {
    const t = parseIsoMs(s.t);
    return t >= span.fromMs && t <= span.toMs;
  };
  const keep = (s: Sample) => {
    switch (s.measurement) {
      case 'migration_progress':
        if (s.tags.migration === m.id && sameAttempt(s, m)) out.progress.push(s);
        return;
      case 'qmp_event':
        if (s.tags.migration === m.id && sameAttempt(s, m)) out.events.push(s);
        return;
      case 'probe':
        if (s.tags.vm === m.vm && (!s.tags.treatment || s.tags.treatment === m.treatment) && sameAttempt(s, m) && inSpan(s))
          out.probe.push(s);
        return;
      case 'dirty_rate':
        if (s.tags.vm === m.vm && (!s.tags.treatment || s.tags.treatment === m.treatment) && inSpan(s)) out.dirty.push(s);
        return;
      case 'power':
        if (powerKept(s, m, span)) out.power.push(s);
        return;
    }
  };
  // one measurement per call: each reads only its own file and tests one needle per line
  for (const name of ['migration_progress', 'qmp_event', 'probe', 'dirty_rate']) await streamSamples(run, keep, [name]);
  const gathered = tapped.get(run);
  if (gathered?.m === m) {
    out.power = [...gathered.power];
    return out;
  }
  // power is kept only inside the span: a campaign's millions of other readings are skipped by their time, unparsed
  let lastT = '',
    lastIn = true;
  const powerInSpan = (line: string) => {
    const t = lineTime(line);
    if (t === null) return true;
    // the hosts' readings of one poll share their time: parse it once
    if (t !== lastT) {
      const ms = parseIsoMs(t);
      lastT = t;
      lastIn = ms >= span.fromMs && ms <= span.toMs;
    }
    return lastIn;
  };
  await streamSamples(run, keep, ['power'], undefined, powerInSpan);
  return out;
}

/** The first event of a side with a name (and MIGRATION status), epoch ms, within [fromMs, toMs]. */
function eventMs(
  events: readonly { side: string; event: string; status: unknown; ms: number }[],
  side: string,
  event: string,
  status?: string,
) {
  return events.find((e) => e.side === side && e.event === event && (status === undefined || e.status === status))?.ms ?? null;
}

/**
 * Throughput is averaged over at least this long: QEMU's counters move in
 * bursts and the harness polls every ~100 ms, so single deltas swing ±30 %.
 */
export const THROUGHPUT_WINDOW_S = 0.5;

export interface TimelineOptions {
  /** Shortest interval a throughput value is averaged over, s (0: every pair of progress samples). */
  throughputWindowS?: number;
}

/**
 * Derives the timeline of migration `m` from its samples. Pure: the same
 * record and samples always give the same series.
 */
export function migrationTimeline(m: Migration, samples: TimelineSamples, opts: TimelineOptions = {}): Timeline {
  const o = { throughputWindowS: opts.throughputWindowS ?? THROUGHPUT_WINDOW_S };
  const t0Ms = recMs(m.t_cmd);
  if (t0Ms === null || !Number.isFinite(t0Ms)) throw new Error(`migration ${m.id} has no t_cmd: the migrate command was never sent`);
  const rel = (ms: number) => (ms - t0Ms) / 1000;
  const missing: Timeline['missing'] = {};

  // progress (harness polls query-migrate): bytes, throughput, sync counts
  const prog = samples.progress
    .map((s) => ({ ms: isoMs(s.t), f: s.fields }))
    .filter((p) => Number.isFinite(p.ms))
    .sort((a, b) => a.ms - b.ms);
  const bytes: Timeline['bytes'] = [];
  for (const p of prog) {
    const tr = num(p.f.transferred);
    if (tr !== null)
      bytes.push({ t: rel(p.ms), transferredMiB: tr / MiB, remainingMiB: num(p.f.remaining) === null ? null : num(p.f.remaining)! / MiB });
  }
  const throughput: Timeline['throughput'] = [];
  for (let i = 0; i < bytes.length - 1;) {
    let j = i + 1;
    while (j < bytes.length - 1 && bytes[j].t - bytes[i].t < o.throughputWindowS) j++;
    const a = bytes[i],
      b = bytes[j];
    if (b.t > a.t) throughput.push({ t0: a.t, t1: b.t, mbit: ((b.transferredMiB - a.transferredMiB) * MiB * 8) / 1e6 / (b.t - a.t) });
    i = j;
  }
  if (bytes.length === 0)
    missing.bytes = prog.length
      ? 'the progress samples carry no transferred bytes'
      : `no migration_progress samples of ${m.id} in this run`;
  if (throughput.length === 0)
    missing.throughput = bytes.length ? 'fewer than two progress samples with transferred bytes' : (missing.bytes ?? 'no progress');

  // QMP events of this migration, both sides
  const events = samples.events
    .map((s) => ({
      side: s.tags.side ?? '',
      event: String(s.fields.event ?? ''),
      status: s.fields.status,
      pass: num(s.fields.pass),
      ms: isoMs(s.t),
    }))
    .filter((e) => Number.isFinite(e.ms))
    .sort((a, b) => a.ms - b.ms);

  // markers: QMP event times, else the record's
  const markers: TimelineMarker[] = [];
  const mark = (kind: MarkerKind, ev: number | null, rec: number | null) => {
    if (ev !== null) markers.push({ kind, t: rel(ev), source: 'event' });
    else if (rec !== null && Number.isFinite(rec)) markers.push({ kind, t: rel(rec), source: 'record' });
  };
  const endStatus = m.status;
  const endEv = eventMs(events, 'src', 'MIGRATION', endStatus);
  const endMs = endEv ?? recMs(m.t_done);
  // events well after the end belong to a later migration through the same QEMU (its old listener keeps the tag)
  const before = (ms: number | null) => (ms !== null && (endMs === null || ms <= endMs + 5_000) ? ms : null);
  mark('STOP', before(eventMs(events, 'src', 'STOP')), recMs(m.t_stop));
  mark('postcopy', before(eventMs(events, 'src', 'MIGRATION', 'postcopy-active')), recMs(m.t_postcopy ?? null));
  mark('RESUME', before(eventMs(events, 'dst', 'RESUME')), recMs(m.t_resume));
  mark(endStatus, endEv, recMs(m.t_done));
  markers.sort((a, b) => a.t - b.t);

  // passes: MIGRATION_PASS on the source, else the sync count in progress samples
  const starts = new Map<number, number>();
  for (const e of events)
    if (e.side === 'src' && e.event === 'MIGRATION_PASS' && e.pass !== null && !starts.has(e.pass)) starts.set(e.pass, e.ms);
  if (starts.size === 0)
    for (const p of prog) {
      const n = num(p.f.dirty_sync_count);
      if (n !== null && !starts.has(n)) starts.set(n, p.ms);
    }
  const lastMs = Math.max(endMs ?? -Infinity, prog.at(-1)?.ms ?? -Infinity);
  const ordered = [...starts].filter(([, ms]) => !(ms > lastMs)).sort((a, b) => a[1] - b[1]);
  const passes = ordered.map(([pass, ms], i) => ({
    pass,
    t0: rel(ms),
    t1: rel(i + 1 < ordered.length ? ordered[i + 1][1] : Math.max(ms, lastMs)),
  }));

  // dirty rate: QEMU's estimate (measured from the second sync on; 0 before it is "not yet"), and the guest's own
  const dirty: Timeline['dirty'] = [];
  for (const p of prog) {
    const r = num(p.f.dirty_pages_rate),
      n = num(p.f.dirty_sync_count);
    if (r !== null && n !== null && n >= 2 && p.f.status !== 'completed')
      dirty.push({ t: rel(p.ms), mibS: (r * PAGE_BYTES) / MiB, source: 'QEMU' });
  }
  for (const s of samples.dirty) {
    const v = num(s.fields.mib_s) ?? (num(s.fields.pages_s) === null ? null : (num(s.fields.pages_s)! * PAGE_BYTES) / MiB);
    const ms = isoMs(s.t);
    if (v !== null && Number.isFinite(ms)) dirty.push({ t: rel(ms), mibS: v, source: 'guest' });
  }
  dirty.sort((a, b) => a.t - b.t);
  if (dirty.length === 0)
    missing.dirty = 'QEMU estimated no dirty rate (it does from its second pass on) and the guest wrote no dirty_rate samples';

  // probe: RTT of answered probes and the outages (runs of lost probes) in the window
  const records: ProbeRecord[] = [];
  for (const s of samples.probe) {
    const seq = num(s.fields.seq),
      sent = num(s.fields.sent_us);
    if (seq === null || sent === null) continue;
    records.push({ seq, sentUs: sent, recvUs: num(s.fields.recv_us) });
  }
  records.sort((a, b) => a.seq - b.seq);
  const sentGaps = records.slice(1).map((r, i) => (r.sentUs - records[i].sentUs) / 1000 / (r.seq - records[i].seq || 1));
  const probeIntervalMs = m.probe_interval_ms ?? (sentGaps.length ? median(sentGaps) : null);

  // the window: the migration, the outage that ends after it, and a margin
  const ends = [rel(lastMs), ...markers.map((k) => k.t)].filter(Number.isFinite);
  let to = ends.length ? Math.max(...ends) : 1;
  const outages: TimelineOutage[] = [];
  if (records.length && probeIntervalMs) {
    const bySeq = new Map(records.map((r) => [r.seq, r]));
    for (const o of computeOutages(records, probeIntervalMs)) {
      const t0 = rel(bySeq.get(o.firstLostSeq)!.sentUs / 1000);
      if (t0 + o.durationMs / 1000 < 0 || t0 > to) continue;
      outages.push({ t0, t1: t0 + o.durationMs / 1000, ms: o.durationMs, uncertaintyMs: o.uncertaintyMs, lost: o.lostCount });
    }
  }
  to = Math.max(to, ...outages.map((o) => o.t1));
  const margin = Math.min(5, Math.max(0.5, 0.05 * to));
  const from = -margin;
  to += margin;
  const within = (t: number) => t >= from && t <= to;
  const probe = records
    .filter((r) => r.recvUs !== null && within(rel(r.sentUs / 1000)))
    .map((r) => ({ t: rel(r.sentUs / 1000), rttMs: (r.recvUs! - r.sentUs) / 1000 }));
  if (records.length === 0) missing.probe = `no probe samples of ${m.vm} around this migration`;
  else if (probe.length === 0 && outages.length === 0) missing.probe = `no probe of ${m.vm} answered in this window`;

  // power of source and destination, a reading beyond each edge kept so the lines reach it
  const power: Timeline['power'] = [];
  for (const s of samples.power) {
    const w = num(s.fields.watts),
      ms = isoMs(s.t),
      host = s.tags.host ?? '';
    if (w === null || !Number.isFinite(ms)) continue;
    const t = rel(ms);
    if (t < from - 2 || t > to + 2) continue;
    power.push({ t, host, role: host === m.src ? 'source' : 'destination', watts: w });
  }
  power.sort((a, b) => a.t - b.t || a.host.localeCompare(b.host));
  if (power.length === 0)
    missing.power = `no power samples of ${m.src} or ${m.dst} around this migration (the run measured no power there)`;

  return {
    id: m.id,
    vm: m.vm,
    src: m.src,
    dst: m.dst,
    status: m.status,
    reason: m.reason,
    t0Ms,
    from,
    to,
    linkRateMbit: m.link_rate_mbit,
    probeIntervalMs,
    throughputWindowS: o.throughputWindowS,
    bytes,
    throughput,
    passes,
    dirty: dirty.filter((d) => within(d.t)),
    probe,
    outages,
    markers,
    power,
    missing,
  };
}

/** True when not one panel has data (then a figure would show only notes). */
export function timelineEmpty(t: Timeline): boolean {
  return t.bytes.length === 0 && t.dirty.length === 0 && t.probe.length === 0 && t.outages.length === 0 && t.power.length === 0;
}

/**
 * The migration the report shows: the completed one (an observation) with the
 * median total time (the lower of two middles), else the first with a command.
 */
export function representativeMigration(run: RunDir): Migration | null {
  const withCmd = run.migrations.filter((m) => m.t_cmd);
  const done = observations(withCmd).filter((m) => m.total_ms !== null);
  if (done.length) {
    const sorted = [...done].sort((a, b) => a.total_ms! - b.total_ms! || a.id.localeCompare(b.id));
    return sorted[Math.floor((sorted.length - 1) / 2)];
  }
  return withCmd[0] ?? null;
}

/** Finds a migration by id; the error lists some valid ids. */
export function findMigration(run: RunDir, id: string): { migration: Migration } | { migration?: undefined; error: string } {
  const hit = run.migrations.filter((m) => m.id === id);
  // a redone unit appends its records again: the last is the one that counts
  if (hit.length) return { migration: hit[hit.length - 1] };
  const ids = [...new Set(run.migrations.map((m) => m.id))];
  const shown = ids.slice(0, 5).join(', ');
  return {
    error: ids.length
      ? `migration '${id}' is not in ${run.dir}/migrations.jsonl; valid ids include ${shown}${ids.length > 5 ? ` (${ids.length} in all)` : ''}`
      : `${run.dir}/migrations.jsonl has no migrations`,
  };
}
