import { sleep } from '../util/time.ts';
/**
 * Host-side dirty rate of a whole guest from QMP `calc-dirty-rate` +
 * `query-dirty-rate`. What a QEMU supports is read from its QMP schema, and
 * modes that crash or fail on this accelerator are never tried:
 *  - page-sampling: hashes sample-pages pages per GiB at start and end; works everywhere.
 *  - dirty-bitmap: the migration dirty log; needs KVM: QEMU 7.2 crashed on it
 *    under TCG, and 10.0 answers 0 MB/s under TCG for a guest dirtying 17 MiB/s.
 *  - dirty-ring: needs KVM with `-accel kvm,dirty-ring-size=N`.
 *  - calc-time-unit 'millisecond' (8.2+) allows windows below 1 s, down to
 *    QEMU's minimum of 50 ms (shorter windows: use the in-guest tracer).
 */
import type { Sample } from '../store/sample.ts';

export type DirtyRateMode = 'page-sampling' | 'dirty-bitmap' | 'dirty-ring';

/** The QMP calls this module needs (QmpClient has them). */
export interface QmpLike {
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts?: { timeoutMs?: number }): Promise<T>;
  readonly greeting: { version: { major: number; minor: number } };
}

export interface DirtyRateSupport {
  available: boolean;
  millisecond: boolean;
  /** Modes safe to use on this QEMU and accelerator, best first. */
  modes: DirtyRateMode[];
  /** Why a mode was left out. */
  notes: string[];
}

interface SchemaEntry {
  name: string;
  'meta-type': string;
  'arg-type'?: string;
  members?: Array<{ name: string; type?: string }>;
  values?: string[];
}

/** Pure part of the detection: schema entries + QEMU version + accelerator (+ whether a dirty ring was configured). */
export function dirtyRateSupportFrom(
  schema: readonly SchemaEntry[],
  version: { major: number; minor: number },
  accel: 'kvm' | 'tcg',
  dirtyRing = false,
): DirtyRateSupport {
  const byName = new Map(schema.map((e) => [e.name, e]));
  const cmd = schema.find((e) => e['meta-type'] === 'command' && e.name === 'calc-dirty-rate');
  const notes: string[] = [];
  if (!cmd) return { available: false, millisecond: false, modes: [], notes: ['this QEMU has no calc-dirty-rate'] };
  const args = cmd['arg-type'] ? (byName.get(cmd['arg-type'])?.members ?? []) : [];
  const millisecond = args.some((m) => m.name === 'calc-time-unit');
  const modeArg = args.find((m) => m.name === 'mode');
  const enumValues = modeArg?.type ? (byName.get(modeArg.type)?.values ?? []) : [];
  const modes: DirtyRateMode[] = ['page-sampling'];
  if (enumValues.includes('dirty-bitmap')) {
    if (accel === 'tcg') notes.push('dirty-bitmap skipped: under TCG it crashes QEMU < 9.0 and reads 0 on 10.0');
    else modes.unshift('dirty-bitmap');
  }
  if (enumValues.includes('dirty-ring')) {
    if (accel !== 'kvm') notes.push('dirty-ring skipped: needs KVM');
    else if (!dirtyRing) notes.push('dirty-ring skipped: QEMU was not started with -accel kvm,dirty-ring-size=N');
    else modes.push('dirty-ring');
  }
  if (!millisecond) notes.push('calc-time-unit not supported: whole seconds only');
  return { available: true, millisecond, modes, notes };
}

/** Asks QEMU what it supports (query-qmp-schema). */
export async function dirtyRateSupport(qmp: QmpLike, accel: 'kvm' | 'tcg', dirtyRing = false): Promise<DirtyRateSupport> {
  const schema = await qmp.execute<SchemaEntry[]>('query-qmp-schema', undefined, { timeoutMs: 30_000 });
  return dirtyRateSupportFrom(schema, qmp.greeting.version, accel, dirtyRing);
}

export interface DirtyRateResult {
  mode: DirtyRateMode;
  /** QEMU's estimate, MiB/s (QEMU calls the unit MB/s; it computes with 2^20). */
  dirtyRateMiBs: number;
  calcTimeMs: number;
  samplePages: number | null;
  /** QEMU's start time of the measurement, epoch ms (query-dirty-rate start-time is seconds of the host clock). */
  startedAtMs: number;
}

interface QueryDirtyRate {
  status: 'unstarted' | 'measuring' | 'measured';
  'dirty-rate'?: number;
  'calc-time'?: number;
  'sample-pages'?: number;
  mode?: DirtyRateMode;
}

/** QEMU refuses shorter calculation times ("out of range [50ms, 60000ms]"). */
export const MIN_CALC_MS = 50;

/**
 * One measurement over `calcTimeMs` (raised to 50 ms; rounded up to whole
 * seconds when QEMU has no millisecond unit; the result has the time used). Resolves when QEMU reports 'measured'.
 */
export async function measureDirtyRate(
  qmp: QmpLike,
  support: DirtyRateSupport,
  opts: { calcTimeMs: number; mode?: DirtyRateMode; samplePages?: number; timeoutMs?: number },
): Promise<DirtyRateResult> {
  const mode = opts.mode ?? 'page-sampling';
  if (!support.available) throw new Error('calc-dirty-rate is not available in this QEMU');
  if (!support.modes.includes(mode)) throw new Error(`calc-dirty-rate mode ${mode} is not usable here (${support.notes.join('; ')})`);
  const ms = support.millisecond;
  const calcTime = ms ? Math.max(MIN_CALC_MS, Math.round(opts.calcTimeMs)) : Math.max(1, Math.ceil(opts.calcTimeMs / 1000));
  const args: Record<string, unknown> = { 'calc-time': calcTime, mode };
  if (ms) args['calc-time-unit'] = 'millisecond';
  if (mode === 'page-sampling' && opts.samplePages) args['sample-pages'] = opts.samplePages;
  const t0 = Date.now();
  await qmp.execute('calc-dirty-rate', args);
  const calcMs = ms ? calcTime : calcTime * 1000;
  const deadline = t0 + calcMs + (opts.timeoutMs ?? 30_000);
  await sleep(calcMs); // QEMU cannot have a result before the window ends
  for (;;) {
    const q = await qmp.execute<QueryDirtyRate>('query-dirty-rate', ms ? { 'calc-time-unit': 'millisecond' } : undefined);
    if (q.status === 'measured') {
      return { mode, dirtyRateMiBs: q['dirty-rate'] ?? 0, calcTimeMs: calcMs, samplePages: q['sample-pages'] ?? null, startedAtMs: t0 };
    }
    if (Date.now() > deadline) throw new Error(`calc-dirty-rate (${mode}, ${calcMs} ms) still '${q.status}' after ${Date.now() - t0} ms`);
    await sleep(Math.min(200, Math.max(5, calcMs / 10)));
  }
}

/** A measurement as a sample (measurement 'dirty_rate_qmp'). */
export function dirtyRateSample(r: DirtyRateResult, tags: Record<string, string>): Sample {
  return {
    t: new Date(r.startedAtMs).toISOString(),
    measurement: 'dirty_rate_qmp',
    tags: { ...tags, mode: r.mode },
    fields: {
      dirty_rate_mib_s: r.dirtyRateMiBs,
      calc_time_ms: r.calcTimeMs,
      sample_pages: r.samplePages,
      dirtied_mib: (r.dirtyRateMiBs * r.calcTimeMs) / 1000,
    },
  };
}
