import { iso } from '../util/time.ts';
import type { BlockMigration, DiskCheck, Features } from '../store/schema/migration.ts';
import type { MigrationObservation, ObservedEvent } from './derive.ts';

/**
 * Pure derivation of what a migration's features did, from the observation (QMP answers and events):
 * which requested feature engaged and the numbers that show it, and block migration's disk phases.
 * A feature is engaged only when QEMU shows it working (post-copy: the source went postcopy-active;
 * multifd: bytes went over multifd channels; xbzrle: pages were sent encoded; auto-converge: the
 * vCPUs were throttled), not when it was merely switched on.
 */
export type { BlockMigration, DiskCheck, Features } from '../store/schema/migration.ts';

/** One block job as query-block-jobs returns it (the fields used here). */
export interface BlockJobInfo {
  device: string;
  type?: string;
  len: number;
  offset: number;
  ready?: boolean;
  status?: string;
  speed?: number;
}

/** What the control code saw of a block migration (harness clock, epoch ms). */
export interface BlockObservation {
  /** blockdev-mirror sent. */
  mirrorStartMs: number | null;
  /** query-block-jobs answers for the mirror job, in order (null: the job was gone). */
  jobs: Array<{ tMs: number; job: BlockJobInfo | null }>;
  /** block-job-cancel sent after the RAM migration completed. */
  cancelMs: number | null;
  /** The guest's disk check (written before, read on the destination after). */
  check: DiskCheck | null;
  /** Bytes the destination's image holds after the mirror (qemu-img actual-size): what was copied, not the zeros it skipped. */
  dstAllocatedBytes?: number | null;
}

/** Features the spec asked for (ObservationConfig.features). */
export interface FeatureRequest {
  postcopy: boolean;
  /** multifd with this many channels (QEMU's default 2 when the spec names none). */
  multifd: { channels: number } | null;
  /** xbzrle with this cache size (bytes; QEMU's default 64 MiB when the spec names none). */
  xbzrle: { cacheBytes: number } | null;
  autoConverge: boolean;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** Largest value of a numeric field over all answers, null when no answer had it. */
function maxOf(obs: MigrationObservation, get: (a: MigrationObservation['queries'][number]['answer']) => unknown): number | null {
  let best: number | null = null;
  for (const q of obs.queries) {
    const v = get(q.answer);
    if (finite(v) && (best === null || v > best)) best = v;
  }
  return best;
}

/** Last value of a numeric field over all answers, null when no answer had it. */
function lastOf(obs: MigrationObservation, get: (a: MigrationObservation['queries'][number]['answer']) => unknown): number | null {
  for (let i = obs.queries.length - 1; i >= 0; i--) {
    const v = get(obs.queries[i].answer);
    if (finite(v)) return v;
  }
  return null;
}

const srcEvent = (obs: MigrationObservation, name: string, pred: (e: ObservedEvent) => boolean = () => true) =>
  obs.events.find((e) => e.side === 'src' && e.event === name && pred(e));

/** Evidence of each requested feature; {} when none was requested (or the observation predates requests). */
export function deriveFeatures(obs: MigrationObservation): Features {
  const req = obs.config.features;
  const out: Features = {};
  if (!req) return out;
  const tCmd = obs.tCmdMs;
  if (req.postcopy) {
    const active = srcEvent(obs, 'MIGRATION', (e) => e.data.status === 'postcopy-active');
    const seen = active !== undefined || obs.queries.some((q) => q.answer.status === 'postcopy-active');
    const sent = obs.control.postcopyStartMs;
    // the blackout: the source stops at the switch, the destination resumes once it has the device state
    const stop = srcEvent(obs, 'STOP');
    const resume = obs.events.find((e) => e.side === 'dst' && e.event === 'RESUME');
    out.postcopy = {
      requested: true,
      engaged: seen,
      t_switch: iso(sent),
      switch_after_ms: sent !== null && tCmd !== null ? sent - tCmd : null,
      t_postcopy: iso(active?.timestampMs),
      blackout_ms: seen && stop && resume ? resume.timestampMs - stop.timestampMs : null,
      requests: lastOf(obs, (a) => a.ram?.['postcopy-requests']),
      postcopy_bytes: lastOf(obs, (a) => a.ram?.['postcopy-bytes']),
    };
  }
  if (req.multifd) {
    const bytes = maxOf(obs, (a) => a.ram?.['multifd-bytes']);
    out.multifd = { requested: true, engaged: bytes === null ? null : bytes > 0, channels: req.multifd.channels, multifd_bytes: bytes };
  }
  if (req.xbzrle) {
    const x = (k: string) => lastOf(obs, (a) => a['xbzrle-cache']?.[k]);
    // the rates are the last iteration's: a terminal answer reports 0, so take them from the last one while it ran
    const running = { ...obs, queries: obs.queries.filter((q) => !TERMINAL.has(q.answer.status ?? '')) };
    const rate = (k: string) => lastOf(running, (a) => a['xbzrle-cache']?.[k]);
    const pages = maxOf(obs, (a) => a['xbzrle-cache']?.pages);
    out.xbzrle = {
      requested: true,
      // QEMU reports xbzrle-cache once the capability is on: without the object there is no evidence
      engaged: pages === null ? null : pages > 0,
      cache_size: x('cache-size') ?? req.xbzrle.cacheBytes,
      pages,
      bytes: x('bytes'),
      cache_miss: x('cache-miss'),
      cache_miss_rate: rate('cache-miss-rate'),
      encoding_rate: rate('encoding-rate'),
      overflow: x('overflow'),
    };
  }
  if (req.autoConverge) {
    // cpu-throttle-percentage appears in query-migrate only while QEMU throttles: its absence is "never throttled"
    const throttle: Array<[number, number]> = [];
    for (const q of obs.queries) {
      const pct = q.answer['cpu-throttle-percentage'];
      if (!finite(pct) || tCmd === null) continue;
      if (throttle.at(-1)?.[1] !== pct) throttle.push([q.tMs - tCmd, pct]);
    }
    const max = throttle.length ? Math.max(...throttle.map((t) => t[1])) : null;
    out.auto_converge = { requested: true, engaged: max !== null && max > 0, max_throttle_pct: max, throttle };
  }
  return out;
}

/** Block migration's disk phases and bytes; null without a block observation. */
export function deriveBlock(obs: MigrationObservation): BlockMigration | null {
  const b = obs.block;
  if (!b) return null;
  const ready = srcEvent(obs, 'BLOCK_JOB_READY');
  // cancelling a READY mirror completes it (the target keeps the copy): BLOCK_JOB_COMPLETED after the cancel
  const done = srcEvent(obs, 'BLOCK_JOB_COMPLETED', (e) => b.cancelMs !== null && e.receivedAtMs >= b.cancelMs);
  const last = [...b.jobs].reverse().find((j) => j.job !== null)?.job ?? null;
  const fromDone = (k: 'len' | 'offset') => (done && finite(done.data[k]) ? (done.data[k] as number) : (last?.[k] ?? null));
  const start = b.mirrorStartMs;
  return {
    disk_bytes: fromDone('len'),
    mirror_bytes: fromDone('offset'),
    dst_allocated_bytes: b.dstAllocatedBytes ?? null,
    t_mirror_start: iso(start),
    t_mirror_ready: iso(ready?.timestampMs),
    t_mirror_done: iso(done?.timestampMs),
    mirror_ms: start !== null && ready ? ready.timestampMs - start : null,
    ready_to_migrate_ms: ready && obs.tCmdMs !== null ? obs.tCmdMs - ready.timestampMs : null,
    switchover_ms: b.cancelMs !== null && done ? done.timestampMs - b.cancelMs : null,
    total_ms: start !== null && done ? done.timestampMs - start : null,
    content: b.check,
  };
}
