import { iso } from '../util/time.ts';
import { longestOutage, type ProbeRecord } from '../native/programs.ts';
import type { MigrationRecord } from './migrate.ts';
import { withPendingLost } from './outage-settle.ts';
import { deriveBlock, deriveFeatures, type BlockMigration, type BlockObservation, type FeatureRequest, type Features } from './features.ts';

/**
 * Measurement of one migration as a pure function: what the control code
 * (migrate.ts) saw — QMP events of both sides, query-migrate answers, probe
 * records, its own clock and what it did — goes in; the measured fields of
 * the record come out. No I/O here, so the numbers users publish can be
 * unit-tested from recorded sequences (test/fixtures/migrations/).
 */

/** A query-migrate answer, as QEMU returns it (fields absent in some states). */
export interface QueryMigrateAnswer {
  status?: string;
  'total-time'?: number;
  downtime?: number;
  'setup-time'?: number;
  'expected-downtime'?: number;
  ram?: Record<string, number>;
  'error-desc'?: string;
  /** Present once the xbzrle capability is on: cache-size, bytes, pages, cache-miss, cache-miss-rate, encoding-rate, overflow. */
  'xbzrle-cache'?: Record<string, number>;
  /** Present only while auto-converge throttles the vCPUs. */
  'cpu-throttle-percentage'?: number;
}

/** One QMP event; `timestampMs` is QEMU's own clock (µs kept as a fraction), `receivedAtMs` the harness clock. */
export interface ObservedEvent {
  side: 'src' | 'dst';
  event: string;
  timestampMs: number;
  receivedAtMs: number;
  data: Record<string, unknown>;
}

/** A query-migrate answer and the harness time (epoch ms) the query was sent. */
export interface ObservedQuery {
  tMs: number;
  answer: QueryMigrateAnswer;
}

export interface ObservationConfig {
  mode: 'live' | 'postcopy' | 'block';
  /** Features the spec asked for (absent in observations recorded before they were checked). */
  features?: FeatureRequest;
  downtimeLimitMs: number;
  maxTimeMs: number;
  probeIntervalMs: number;
  /** Bottleneck rate of the path the migration takes (bit/s), null when unshaped. */
  linkRateBps: number | null;
}

/** What the control code did or saw happen, with harness times (epoch ms). */
export interface ControlFacts {
  /** migrate-start-postcopy was sent. */
  postcopyStartMs: number | null;
  /** migrate_cancel was sent because max_time passed. */
  cancelledAtMs: number | null;
  /** The migration did not stop within 60 s of migrate_cancel; polling was given up. */
  cancelStuck: boolean;
  /** The destination QEMU exited (and how), as seen by the harness. */
  dstExit: { tMs: number; description: string } | null;
  /**
   * The QMP connection to the destination closed while its QEMU was not seen to exit (an SSH
   * connection cut): the harness cancels an unfinished migration, the guest stays on the source.
   * Optional: observations recorded before it existed lack it.
   */
  dstLost?: { tMs: number; description: string } | null;
  /** query-migrate on the source failed (message); polling ended there. */
  srcUnanswered: string | null;
  /** Any other error that ended the control code early (message). */
  error: string | null;
}

/**
 * Everything measured about one migration, filled by the control code as it
 * goes; plain JSON, so it doubles as a test fixture.
 */
export interface MigrationObservation {
  version: 1;
  id: string;
  config: ObservationConfig;
  /** Harness time just before the `migrate` command; null when it was never sent. */
  tCmdMs: number | null;
  /** Harness time when polling ended; null when it never ended (error before). */
  tEndMs: number | null;
  events: ObservedEvent[];
  /** Every successful query-migrate answer in order, the ones re-read after completion included. */
  queries: ObservedQuery[];
  /** Probe records (any order) from the last answered probe before tCmd on; null without a probe. */
  probe: ProbeRecord[] | null;
  /**
   * Seqs without an outcome when the control code took the probe as settled (a reply to a later probe, sent after
   * RESUME, had been read): lost, by the FIFO argument of outage-settle.ts. Absent: everything had its outcome.
   */
  probePending?: number[] | null;
  control: ControlFacts;
  /** Block migration (mode block, VM with a disk): the mirror as observed. */
  block?: BlockObservation | null;
  /** How a fixture was made (what was recorded, what reconstructed, how probe records were thinned). */
  note?: string;
}

/** The record fields derived from an observation. */
export type DerivedMeasures = Pick<
  MigrationRecord,
  | 'status'
  | 'reason'
  | 't_cmd'
  | 't_stop'
  | 't_resume'
  | 't_done'
  | 'total_ms'
  | 'total_ms_harness'
  | 'downtime_reported_ms'
  | 'downtime_event_ms'
  | 'downtime_observed_ms'
  | 'preop_ms'
  | 'postop_ms'
  | 'setup_ms'
  | 'transferred_bytes'
  | 'passes'
  | 'link_rate_mbit'
  | 'downtime_limit_ms'
  | 'probe_interval_ms'
> & {
  /**
   * ± of downtime_observed_ms: what the probe's send times around the outage allow (one probe
   * interval when it sent on schedule; an outage without any lost probe is 0 ± one interval).
   */
  downtime_observed_uncertainty_ms: number | null;
  /** Source entered postcopy-active (QEMU clock); null when post-copy never engaged. */
  t_postcopy: string | null;
  /** Each requested feature: engaged or not, with its evidence (features.ts). */
  features: Features;
  /** Block migration's disk phases (absent unless observed). */
  block?: BlockMigration | null;
};

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export function emptyControlFacts(): ControlFacts {
  return { postcopyStartMs: null, cancelledAtMs: null, cancelStuck: false, dstExit: null, dstLost: null, srcUnanswered: null, error: null };
}

/** '15s', '1500ms', as the user wrote durations. */
export function formatDurationMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

const finite = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x);

/** The last query-migrate answer, or {} when there was none. */
export function finalAnswer(obs: MigrationObservation): QueryMigrateAnswer {
  return obs.queries.at(-1)?.answer ?? {};
}

/**
 * End of the migration: the source's MIGRATION event with the final
 * (terminal) status on QEMU's clock, else the harness time polling ended.
 */
export function migrationEndMs(obs: MigrationObservation): number | null {
  const status = finalAnswer(obs).status;
  if (status && TERMINAL.has(status)) {
    const ev = obs.events.find((e) => e.side === 'src' && e.event === 'MIGRATION' && e.data.status === status);
    if (ev && finite(ev.timestampMs)) return ev.timestampMs;
  }
  return obs.tEndMs;
}

/** The guest stopped on the source (first STOP there). */
export function stopEvent(obs: MigrationObservation): ObservedEvent | undefined {
  return obs.events.find((e) => e.side === 'src' && e.event === 'STOP');
}

/** The guest resumed on the destination (first RESUME there). */
export function resumeEvent(obs: MigrationObservation): ObservedEvent | undefined {
  return obs.events.find((e) => e.side === 'dst' && e.event === 'RESUME');
}

/** Is this probe record a reply to a probe sent at or after `tMs`? The first one marks the guest answering again. */
export const answeredSince =
  (tMs: number) =>
  (r: ProbeRecord): boolean =>
    r.recvUs !== null && r.sentUs >= tMs * 1000;

/** The earliest-sent answered probe sent at or after `tMs`. */
export function firstReplySince(records: readonly ProbeRecord[], tMs: number): ProbeRecord | null {
  const hit = answeredSince(tMs);
  let best: ProbeRecord | null = null;
  for (const r of records) if (hit(r) && (!best || r.sentUs < best.sentUs)) best = r;
  return best;
}

/**
 * The probe records an observation needs: from the last answered probe sent
 * before the migrate command on, so a loss run crossing tCmd keeps its length.
 */
export function probeWindow(records: readonly ProbeRecord[], tCmdMs: number): ProbeRecord[] {
  const tUs = tCmdMs * 1000;
  let from = -Infinity;
  for (const r of records) if (r.recvUs !== null && r.sentUs < tUs && r.sentUs > from) from = r.sentUs;
  return records.filter((r) => r.sentUs >= from);
}

function statusAndReason(obs: MigrationObservation, final: QueryMigrateAnswer): Pick<MigrationRecord, 'status' | 'reason'> {
  const c = obs.control;
  const cancelled = c.cancelledAtMs !== null;
  let reason: string | null = null;
  if (cancelled) reason = `not completed within max_time ${formatDurationMs(obs.config.maxTimeMs)}; cancelled`;
  if (c.cancelStuck) reason = `${reason ?? ''} migration did not stop within 60 s of migrate_cancel`.trim();
  if (c.srcUnanswered !== null) reason = `source QEMU stopped answering: ${c.srcUnanswered}`;
  if (c.error !== null) return { status: 'failed', reason: reason ?? c.error };
  if (final.status === 'completed') return { status: 'completed', reason };
  // (the control code records only exits while it measures, not those its cleanup causes)
  const dstGone =
    c.dstExit?.description ?? (c.dstLost ? `${c.dstLost.description}; migration cancelled, the guest stays on the source` : null);
  if (!cancelled && dstGone) return { status: 'failed', reason: dstGone };
  const ended = `migration ${final.status ?? 'ended'}${final['error-desc'] ? `: ${final['error-desc']}` : ''}`;
  return { status: cancelled ? 'cancelled' : 'failed', reason: reason ?? dstGone ?? ended };
}

/** Derives the measured fields of a migration record from what was observed. */
export function deriveMigration(obs: MigrationObservation): DerivedMeasures {
  const { config } = obs;
  const final = finalAnswer(obs);
  // a cancelled migration's final answer has no RAM statistics: use the last that had them
  let lastRam: QueryMigrateAnswer = {};
  for (const q of obs.queries) if (q.answer.ram) lastRam = q.answer;
  const ram = lastRam.ram ?? {};
  const { status, reason } = statusAndReason(obs, final);
  const tCmd = obs.tCmdMs;
  const tDone = obs.tEndMs === null ? null : migrationEndMs(obs);
  const out: DerivedMeasures = {
    status,
    reason,
    t_cmd: iso(tCmd),
    t_stop: null,
    t_resume: null,
    t_done: iso(tDone),
    total_ms: final.status === 'completed' ? (final['total-time'] ?? null) : (lastRam['total-time'] ?? null),
    total_ms_harness: tCmd !== null && tDone !== null ? tDone - tCmd : null,
    downtime_reported_ms: final.status === 'completed' ? (final.downtime ?? null) : null,
    downtime_event_ms: null,
    downtime_observed_ms: null,
    preop_ms: null,
    postop_ms: null,
    setup_ms: lastRam['setup-time'] ?? final['setup-time'] ?? null,
    transferred_bytes: ram.transferred ?? null,
    passes: ram['dirty-sync-count'] ?? null,
    link_rate_mbit: config.linkRateBps ? config.linkRateBps / 1e6 : null,
    downtime_limit_ms: config.downtimeLimitMs,
    probe_interval_ms: config.probeIntervalMs,
    downtime_observed_uncertainty_ms: null,
    t_postcopy: iso(
      obs.events.find((e) => e.side === 'src' && e.event === 'MIGRATION' && e.data.status === 'postcopy-active')?.timestampMs,
    ),
    features: deriveFeatures(obs),
    ...(obs.block ? { block: deriveBlock(obs) } : {}),
  };
  if (status !== 'completed' || tCmd === null) return out;
  // the guest's own pause: STOP on the source -> RESUME on the destination, both on QEMU clocks
  const stop = stopEvent(obs);
  const resume = resumeEvent(obs);
  if (stop) {
    out.t_stop = iso(stop.timestampMs);
    out.preop_ms = stop.timestampMs - tCmd;
  }
  if (resume) out.t_resume = iso(resume.timestampMs);
  if (stop && resume) out.downtime_event_ms = resume.timestampMs - stop.timestampMs;
  // as a client sees it: the longest probe outage from the command to the first reply after RESUME
  if (obs.probe && resume) {
    const probe = withPendingLost(obs.probe, obs.probePending);
    const first = firstReplySince(probe, resume.timestampMs);
    if (first) {
      out.postop_ms = first.sentUs / 1000 - resume.timestampMs;
      const o = longestOutage(probe, config.probeIntervalMs, { fromUs: tCmd * 1000, toUs: first.sentUs });
      out.downtime_observed_ms = o ? o.durationMs : 0;
      out.downtime_observed_uncertainty_ms = o ? o.uncertaintyMs : config.probeIntervalMs;
    }
  }
  return out;
}
