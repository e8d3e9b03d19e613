/**
 * Spec workload -> the guest's `mb.workload=` string (what /init runs) and a
 * one-line label for records. One function per kind; the guest programs are
 * in workloads/<dir>/ and document the same parameters.
 */
import type { WorkloadSpec } from '../spec/schema.ts';
import type { Duration } from '../spec/units.ts';
import { dirtyWorkloadSpec } from './dirty.ts';

type Running = Exclude<WorkloadSpec, { kind: 'idle' }>;

const MiB = 2 ** 20;

/** Size for the guest programs: whole KiB/MiB when exact, else bytes. */
function guestSize(bytes: number): string {
  if (bytes % MiB === 0) return `${bytes / MiB}M`;
  if (bytes % 1024 === 0) return `${bytes / 1024}K`;
  return String(Math.round(bytes));
}

/** Milliseconds as the guest programs read them (bare = ms would lose "s"). */
function guestMs(d: Duration): string {
  return `${d.ms}ms`;
}

/** Items /init handles itself: swap, and tracing once the workload runs. */
function initItems(w: Running): string[] {
  const items: string[] = [];
  if (w.kind === 'mempressure') items.push(`swap=${guestSize(w.swap.bytes)}`);
  if (w.trace) {
    items.push(`trace=${w.trace.windows.map(guestMs).join(':')}`);
    if (w.trace.reps !== 1) items.push(`trace_reps=${w.trace.reps}`);
    const delay = w.trace.delay ?? w.warmup;
    if (delay.ms > 0) items.push(`trace_delay=${guestMs(delay)}`);
  }
  return items;
}

/** Bounds (util >= 1 %, percent 1-99 %) are the schema's: a spec that got here is in range. */
function programString(w: Running): string {
  switch (w.kind) {
    case 'dirty':
      return dirtyWorkloadSpec({
        wsetBytes: w.wset.bytes,
        periodMs: w.period.ms,
        bpc: w.bpc,
        fill: w.fill.pct,
        hotBytes: w.hot?.bytes,
        hotPeriodMs: w.hot_period?.ms,
        mlock: w.mlock,
      });
    case 'cpu': {
      const util = Math.round(w.util.pct);
      const items = [`util=${util}`, `slice=${guestMs(w.slice)}`];
      if (w.threads) items.push(`threads=${w.threads}`);
      return `cpu:${items.join(',')}`;
    }
    case 'stress': {
      const items = [`vm=${w.vm}`, `vm_bytes=${guestSize(w.vm_bytes.bytes)}`, `vm_stride=${w.vm_stride}`];
      if (w.vm_hang) items.push(`vm_hang=${guestMs(w.vm_hang)}`);
      if (w.vm_keep) items.push('vm_keep');
      return `stress:${items.join(',')}`;
    }
    case 'mempressure': {
      const pct = Math.round(w.percent.pct);
      return `mempressure:percent=${pct},rate=${w.rate}`;
    }
  }
}

/** The guest's `mb.workload=` string for a spec workload (undefined when idle). */
export function guestWorkloadString(w: WorkloadSpec): string | undefined {
  if (w.kind === 'idle') return undefined;
  const extra = initItems(w);
  return extra.length ? `${programString(w)},${extra.join(',')}` : programString(w);
}

/** One-line label of a workload, for records, tags and reports. */
export function guestWorkloadLabel(w: WorkloadSpec): string {
  switch (w.kind) {
    case 'idle':
      return 'idle';
    case 'dirty': {
      const parts = [`wset=${w.wset}`, `period=${w.period}`, `bpc=${w.bpc}`, `fill=${w.fill}`];
      if (w.hot) parts.push(`hot=${w.hot}`);
      if (w.hot_period) parts.push(`hot_period=${w.hot_period}`);
      return `dirty ${parts.join(' ')}`;
    }
    case 'cpu':
      return `cpu util=${w.util}${w.threads ? ` threads=${w.threads}` : ''}`;
    case 'stress':
      return `stress vm=${w.vm} vm_bytes=${w.vm_bytes}${w.vm_hang ? ` vm_hang=${w.vm_hang}` : ''}${w.vm_keep ? ' vm_keep' : ''}`;
    case 'mempressure':
      return `mempressure percent=${w.percent} rate=${w.rate} swap=${w.swap}`;
  }
}

/** Warm-up after MB-WORKLOAD-RUNNING, in ms (0 for idle). */
export function workloadWarmupMs(w: WorkloadSpec): number {
  return w.kind === 'idle' ? 0 : w.warmup.ms;
}
