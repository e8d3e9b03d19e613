/**
 * Host-side view of mb-dirty (workloads/dirty/dirty.c, the C tree): builds the guest's
 * `mb.workload=` string and parses the report lines the guest prints.
 */
import { UserError } from '../util/errors.ts';

/** Salfner et al.'s parameters plus mVM's hot/cold split. Sizes in bytes, times in ms. */
export interface DirtyParams {
  wsetBytes: number;
  periodMs?: number;
  /** Cold blocks (4 KiB pages) written per cycle. */
  bpc?: number;
  /** Percent of each block written, 0-100. */
  fill?: number;
  hotBytes?: number;
  /** Time to rewrite the whole hot set once. */
  hotPeriodMs?: number;
  mlock?: boolean;
}

/** One `MB-DIRTY ...` line: what the generator achieved in the last interval. */
export interface DirtyReport {
  /** Seconds since the generator started (guest monotonic clock). */
  upS: number;
  pagesPerS: number;
  mibPerS: number;
  targetPagesPerS: number;
  hotPagesPerS: number;
  coldPagesPerS: number;
  /** Cycles skipped because the generator fell behind. */
  late: number;
}

const KiB = 1024;

function size(bytes: number): string {
  if (bytes % (KiB * KiB) === 0) return `${bytes / (KiB * KiB)}M`;
  if (bytes % KiB === 0) return `${bytes / KiB}K`;
  return String(bytes);
}

/**
 * The kernel command-line workload spec, e.g.
 * `dirty:wset=64M,period=10ms,bpc=64,fill=100,hot=16M,hotperiod=1000ms`.
 * Syntax: `<kind>:<key>=<value>,...`; the guest runs /bin/mb-<kind> with
 * each comma-separated item as one argument.
 */
export function dirtyWorkloadSpec(p: DirtyParams): string {
  if (!(p.wsetBytes >= 4096)) throw new UserError(`dirty workload: wset must be at least 4 KiB (got ${p.wsetBytes} bytes)`);
  if (p.fill !== undefined && (p.fill < 0 || p.fill > 100)) throw new UserError(`dirty workload: fill must be 0..100 (got ${p.fill})`);
  if (p.hotBytes !== undefined && p.hotBytes > p.wsetBytes) throw new UserError('dirty workload: hot must not exceed wset');
  if (p.periodMs !== undefined && !(p.periodMs > 0)) throw new UserError('dirty workload: period must be > 0');
  const items = [`wset=${size(p.wsetBytes)}`];
  if (p.periodMs !== undefined) items.push(`period=${p.periodMs}ms`);
  if (p.bpc !== undefined) items.push(`bpc=${Math.round(p.bpc)}`);
  if (p.fill !== undefined) items.push(`fill=${Math.round(p.fill)}`);
  if (p.hotBytes) items.push(`hot=${size(p.hotBytes)}`);
  if (p.hotPeriodMs !== undefined) items.push(`hotperiod=${p.hotPeriodMs}ms`);
  if (p.mlock) items.push('mlock');
  return `dirty:${items.join(',')}`;
}

/** Parses an `MB-DIRTY ` report line (anywhere in the line); null for other lines. */
export function parseDirtyReport(line: string): DirtyReport | null {
  const i = line.indexOf('MB-DIRTY ');
  if (i < 0) return null;
  const kv = new Map<string, number>();
  for (const m of line.slice(i + 9).matchAll(/(\w+)=([-\d.]+)/g)) kv.set(m[1], Number(m[2]));
  const need = ['up', 'pages_s', 'mib_s', 'target_pages_s'];
  if (!need.every((k) => Number.isFinite(kv.get(k)))) return null;
  return {
    upS: kv.get('up')!,
    pagesPerS: kv.get('pages_s')!,
    mibPerS: kv.get('mib_s')!,
    targetPagesPerS: kv.get('target_pages_s')!,
    hotPagesPerS: kv.get('hot_pages_s') ?? 0,
    coldPagesPerS: kv.get('cold_pages_s') ?? 0,
    late: kv.get('late') ?? 0,
  };
}
