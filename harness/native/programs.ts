/**
 * The testbed's native helpers and the pure logic around their output:
 *  - mb-delayfwd (delayfwd.c): adds delay/jitter/loss between two veths,
 *    because the host kernel has no netem;
 *  - mb-probe (probe.c): fixed-rate ICMP probe whose per-probe send/receive
 *    times give the observed downtime of a migrating guest;
 *  - mb-reaper (reaper.c): runs an emulated server's sshd as a child subreaper.
 */
import { fileURLToPath } from 'node:url';
import { compileC } from '../util/compile.ts';

const SOURCE_DIR = fileURLToPath(new URL('.', import.meta.url));

/** Path of the compiled mb-delayfwd (built once per source change, cached). */
export function delayForwarderPath(): Promise<string> {
  return compileC({ name: 'mb-delayfwd', sources: [`${SOURCE_DIR}delayfwd.c`], headers: [`${SOURCE_DIR}common.h`] });
}

/** Path of the compiled mb-probe (built once per source change, cached). */
export function probePath(): Promise<string> {
  return compileC({ name: 'mb-probe', sources: [`${SOURCE_DIR}probe.c`], headers: [`${SOURCE_DIR}common.h`], flags: ['-pthread'] });
}

/** Path of the compiled mb-reaper (built once per source change, cached). */
export function reaperPath(): Promise<string> {
  return compileC({ name: 'mb-reaper', sources: [`${SOURCE_DIR}reaper.c`] });
}

// ---------------------------------------------------------------- arguments

/** One direction of a delayed link. Times in milliseconds, loss as a fraction 0..1. */
export interface DelaySpec {
  delayMs: number;
  jitterMs?: number;
  loss?: number;
}

export interface DelayForwarderOptions {
  /** Interface whose arriving frames go out on `ifB` after `ab`. */
  ifA: string;
  ifB: string;
  ab: DelaySpec;
  ba: DelaySpec;
  /** Queue limit per direction (default 32 MiB in the program). */
  limitBytes?: number;
  pidfile?: string;
  /** Print counters to stderr this often (also on SIGUSR1). */
  statsIntervalMs?: number;
  /** Drop frames that waited longer than this in the socket before being read (forwarder stopped/starved). */
  maxWaitMs?: number;
  seed?: number;
  /** SCHED_FIFO: keeps the added delay accurate on a loaded machine. */
  rt?: boolean;
}

const us = (ms: number): string => `${Math.round(ms * 1000)}us`;

/** Arguments for mb-delayfwd (run it inside the switch namespace). */
export function delayForwarderArgs(o: DelayForwarderOptions): string[] {
  const a = ['--a', o.ifA, '--b', o.ifB, '--delay-ab', us(o.ab.delayMs), '--delay-ba', us(o.ba.delayMs)];
  if (o.ab.jitterMs) a.push('--jitter-ab', us(o.ab.jitterMs));
  if (o.ba.jitterMs) a.push('--jitter-ba', us(o.ba.jitterMs));
  if (o.ab.loss) a.push('--loss-ab', String(o.ab.loss));
  if (o.ba.loss) a.push('--loss-ba', String(o.ba.loss));
  if (o.limitBytes !== undefined) a.push('--limit-bytes', String(o.limitBytes));
  if (o.pidfile) a.push('--pidfile', o.pidfile);
  if (o.statsIntervalMs) a.push('--stats-interval', us(o.statsIntervalMs));
  if (o.maxWaitMs !== undefined) a.push('--max-wait', us(o.maxWaitMs));
  if (o.seed !== undefined) a.push('--seed', String(o.seed));
  if (o.rt) a.push('--rt');
  return a;
}

export interface ProbeOptions {
  target: string;
  intervalMs: number;
  /** Stop after this long; omit to run until SIGTERM. */
  durationMs?: number;
  /** A probe without reply after this long is reported lost (default 1 s). */
  timeoutMs?: number;
  /** SCHED_FIFO + mlockall: needed to really reach 100 probes/s on a loaded box. */
  rt?: boolean;
  /** ICMP id (raw socket); default the probe's PID. */
  id?: number;
}

/** Arguments for mb-probe. */
export function probeArgs(o: ProbeOptions): string[] {
  const a = ['--target', o.target, '--interval', us(o.intervalMs)];
  if (o.durationMs !== undefined) a.push('--duration', us(o.durationMs));
  if (o.timeoutMs !== undefined) a.push('--timeout', us(o.timeoutMs));
  if (o.rt) a.push('--rt');
  if (o.id !== undefined) a.push('--id', String(o.id));
  return a;
}

// ---------------------------------------------------------------- probe output

/** One probe: CLOCK_REALTIME epoch microseconds; recvUs null when no reply came in time. */
export interface ProbeRecord {
  seq: number;
  sentUs: number;
  recvUs: number | null;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/**
 * Parses one stdout line of mb-probe. Returns null for blank lines and for
 * anything that is not a probe record (so a stream can be fed line by line).
 */
export function parseProbeLine(line: string): ProbeRecord | null {
  const s = line.trim();
  if (!s.startsWith('{')) return null;
  let o: unknown;
  try {
    o = JSON.parse(s);
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null) return null;
  const { seq, sent_us, recv_us } = o as Record<string, unknown>;
  if (!isInt(seq) || seq < 0 || !isInt(sent_us)) return null;
  if (recv_us !== null && !isInt(recv_us)) return null;
  return { seq, sentUs: sent_us, recvUs: recv_us };
}

// ---------------------------------------------------------------- outages

/**
 * A run of consecutive lost probes (no reply).
 *
 * Definition (bounded outages):
 *   durationMs = (sent(first answered after the run) - sent(last answered before the run)) / 1000 - interval
 *
 * Why send times: a reply to the probe sent at `before` shows the service
 * was up at that send time, the reply to `after` shows it up again at that
 * send time; everything sent in between was lost. The gap lies between
 * (n-1) and (n+1) intervals for n lost probes, and subtracting one interval
 * gives the midpoint, n · interval when probes went out on schedule, while
 * still using the real send times when the prober was late or skipped slots.
 * Gaps between reply *arrival* times are not used: they add the change in
 * reply latency (queues draining after resume, a different RTT to the new
 * host) to the outage.
 */
export interface Outage {
  firstLostSeq: number;
  lastLostSeq: number;
  lostCount: number;
  /** Send time of the last answered probe before the run (first lost probe's send time if unbounded at start). */
  startUs: number;
  /** Send time of the first answered probe after the run (last lost probe's send time + interval if unbounded at end). */
  endUs: number;
  durationMs: number;
  /**
   * Half-width of what the send times allow, around durationMs: the outage
   * lasted at least from the first to the last lost probe's send time and at
   * most from `before` to `after`. On schedule that is ± one interval; a late
   * or skipping prober widens it (max(interval, gap before + gap after - interval)).
   */
  uncertaintyMs: number;
  /**
   * false when the run touches the start or end of the records, so one side
   * has no answered probe; then durationMs is a lower bound
   * (lost probes' send span + one interval).
   */
  bounded: boolean;
}

export interface OutageOptions {
  /** Only runs of at least this many lost probes (default 1). */
  minLost?: number;
  /** Also return runs at the very start or end of the records (default false). */
  includeUnbounded?: boolean;
}

/** Finds every run of consecutive lost probes; records may come in any order. */
export function computeOutages(records: readonly ProbeRecord[], intervalMs: number, opts: OutageOptions = {}): Outage[] {
  if (!(intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${intervalMs}`);
  const minLost = opts.minLost ?? 1;
  const sorted = [...records].sort((a, b) => a.seq - b.seq);
  const out: Outage[] = [];
  let i = 0;
  while (i < sorted.length) {
    if (sorted[i].recvUs !== null) {
      i++;
      continue;
    }
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1].recvUs === null) j++;
    const first = sorted[i];
    const last = sorted[j];
    const before = i > 0 ? sorted[i - 1] : undefined;
    const after = j + 1 < sorted.length ? sorted[j + 1] : undefined;
    const lostCount = j - i + 1;
    const bounded = before !== undefined && after !== undefined;
    if (lostCount >= minLost && (bounded || opts.includeUnbounded)) {
      const startUs = before ? before.sentUs : first.sentUs;
      const endUs = after ? after.sentUs : last.sentUs + intervalMs * 1000;
      const durationMs = bounded ? (endUs - startUs) / 1000 - intervalMs : (last.sentUs - first.sentUs) / 1000 + intervalMs;
      const gapsMs = (first.sentUs - startUs + (endUs - last.sentUs)) / 1000;
      const uncertaintyMs = bounded ? Math.max(intervalMs, gapsMs - intervalMs) : intervalMs;
      out.push({ firstLostSeq: first.seq, lastLostSeq: last.seq, lostCount, startUs, endUs, durationMs, uncertaintyMs, bounded });
    }
    i = j + 1;
  }
  return out;
}

/** A time window in epoch microseconds, both ends included. */
export interface TimeWindowUs {
  fromUs: number;
  toUs: number;
}

/**
 * The longest bounded outage, optionally only among those overlapping a
 * window (e.g. from the migrate command to completion + a margin). Outages
 * are found on all records first, so a loss run crossing the window's edge
 * keeps its full length. Null when there is none.
 */
export function longestOutage(records: readonly ProbeRecord[], intervalMs: number, window?: TimeWindowUs): Outage | null {
  let best: Outage | null = null;
  for (const o of computeOutages(records, intervalMs)) {
    if (window && (o.endUs < window.fromUs || o.startUs > window.toUs)) continue;
    if (!best || o.durationMs > best.durationMs) best = o;
  }
  return best;
}

/** Probes sent and lost, e.g. outside every migration. */
export interface ProbeLoss {
  sent: number;
  lost: number;
}

/**
 * The probe's own loss: probes sent outside every window, and those of them
 * lost. A loss run that overlaps a window (a migration's downtime, whose end
 * may come after the window) belongs to the window as a whole. Only records
 * with seq < `belowSeq` are counted (the rest classify runs crossing it).
 */
export function probeLoss(
  records: readonly ProbeRecord[],
  intervalMs: number,
  windows: readonly TimeWindowUs[],
  belowSeq = Infinity,
): ProbeLoss {
  const inWindow = (fromUs: number, toUs: number) => windows.some((w) => toUs >= w.fromUs && fromUs <= w.toUs);
  const inside = new Set<number>();
  for (const o of computeOutages(records, intervalMs, { includeUnbounded: true })) {
    if (inWindow(o.startUs, o.endUs)) for (let q = o.firstLostSeq; q <= o.lastLostSeq; q++) inside.add(q);
  }
  let sent = 0;
  let lost = 0;
  for (const r of records) {
    if (r.seq >= belowSeq) continue;
    if (r.recvUs === null ? inside.has(r.seq) : inWindow(r.sentUs, r.sentUs)) continue;
    sent++;
    if (r.recvUs === null) lost++;
  }
  return { sent, lost };
}

/** mb-probe's final stderr line: what it sent, received and lost, and its own CPU time. */
export interface ProbeSummary {
  sent: number;
  received: number;
  lost: number;
  late_replies: number;
  skipped_slots: number;
  send_errors: number;
  raw_socket: boolean;
  rt: boolean;
  /** Absent from binaries built before the summary carried them. */
  cpu_user_us?: number;
  cpu_sys_us?: number;
}

/** The summary line among mb-probe's stderr lines (the last one), or null. */
export function parseProbeSummary(stderr: string): ProbeSummary | null {
  for (const line of stderr.split('\n').reverse()) {
    const s = line.trim();
    if (!s.startsWith('{')) continue;
    try {
      const o = JSON.parse(s) as Record<string, unknown>;
      if (o.event === 'summary' && isInt(o.sent) && isInt(o.received) && isInt(o.lost)) return o as unknown as ProbeSummary;
    } catch {
      // not JSON: a diagnostic line
    }
  }
  return null;
}

/** CPU time (user + system, ms) of a process from /proc/<pid>/stat text; null when unreadable. */
export function cpuMsFromStat(stat: string, ticksPerS = 100): number | null {
  // the command name (field 2) may hold spaces and parentheses: fields count from the last ')'
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return ((utime + stime) * 1000) / ticksPerS;
}
