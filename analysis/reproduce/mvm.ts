/**
 * Kherbache, Madelaine, Hermenier: mVM (seed 001). Duration against
 * bandwidth for stress workloads (Fig. 4) and capped parallelism (Memory
 * Buddies MB-k) against sequential: migration slowdown and completion
 * speedup (Figs. 5-6, Tables I-II). mVM's own scheduler is not a plan here.
 */
import { mean } from '../stats/descriptive.ts';
import type { Migration } from '../rundir.ts';
import { fmt, greater, groupBy, labelFields, noData, nums, obsOf, specRun, type Finding, type StudyData } from './common.ts';
import { parseSize } from '../../harness/spec/units.ts';

export const MVM_SPECS = { bandwidth: 'mvm-stressbw', scheduler: 'mvm-sched' } as const;

const PAPER = {
  fig4: 'Fig. 4: "the duration of a live-migration increases exponentially when the allocated bandwidth decreases linearly" (4 GiB VM, 30 ms)',
  bytes: 'Fig. 4: 1000 x 70K takes longer than 1000 x 10K at every bandwidth',
  slowdown: 'Fig. 5: slowdown vs sequential scattered and "increasing with the concurrency" for MB-2..MB-4; mean >= 33 % for MB-2',
  speedup: 'Fig. 6 / Table II: completion speedup vs sequential, MB-2 >= 36 % (mVM 54 %); MB-3, MB-4 "not always positive"',
  mvm: 'Tables I-II: mVM beats the best MB-k by 20.4 % (durations) and 28.1 % (completion)',
};

/** stress vm_bytes in KiB from the workload label ("stress vm=100 vm_bytes=70KiB"). */
function vmBytesKiB(m: Migration): number | null {
  const { kind, fields } = labelFields(m.workload);
  const b = kind === 'stress' ? parseSize(fields.vm_bytes ?? '') : null;
  return b === null ? null : b / 1024;
}

interface BwCell {
  kib: number;
  mbit: number;
  totalMs: number[];
  /** Migrations cancelled at max_time: how long each ran, a lower bound of its duration, ms. */
  censoredMs: number[];
  notCompleted: number;
}

/** A migration cancelled because it did not complete within max_time (it would have taken longer). */
const hitMaxTime = (m: Migration): boolean => m.status === 'cancelled' && /max_time/.test(m.reason ?? '') && m.total_ms !== null;

export function bandwidthCells(all: readonly Migration[]): BwCell[] {
  const out: BwCell[] = [];
  for (const m of all) {
    const kib = vmBytesKiB(m);
    if (kib === null || m.link_rate_mbit === null || m.partial) continue;
    let c = out.find((x) => x.kib === kib && x.mbit === m.link_rate_mbit);
    if (!c) out.push((c = { kib, mbit: m.link_rate_mbit, totalMs: [], censoredMs: [], notCompleted: 0 }));
    if (m.status === 'completed' && m.total_ms !== null) c.totalMs.push(m.total_ms);
    else {
      c.notCompleted++;
      if (hitMaxTime(m)) c.censoredMs.push(m.total_ms!);
    }
  }
  return out.sort((a, b) => a.kib - b.kib || a.mbit - b.mbit);
}

const cellText = (c: BwCell): string =>
  c.totalMs.length
    ? `${fmt(mean(c.totalMs) / 1000)} s${c.notCompleted ? ` (${c.notCompleted} not completed)` : ''}`
    : c.censoredMs.length
      ? `> ${fmt(Math.min(...c.censoredMs) / 1000)} s (${c.censoredMs.length} cancelled at max_time)`
      : `- (${c.notCompleted} not completed)`;

function fig4(cells: BwCell[]): Finding[] {
  const claim = 'Migration duration grows faster than 1/bandwidth as bandwidth falls (stress workloads)';
  const claim2 = 'The 70K stress workload migrates longer than the 10K one';
  // a cell counts if something completed in it, or everything in it ran into max_time (a lower bound)
  const ok = cells.filter((c) => c.totalMs.length || c.censoredMs.length);
  if (ok.length < 2)
    return [
      noData('duration-vs-bandwidth', claim, PAPER.fig4, MVM_SPECS.bandwidth),
      noData('stress-bytes', claim2, PAPER.bytes, MVM_SPECS.bandwidth),
    ];
  const heavy = Math.max(...ok.map((c) => c.kib));
  const row = ok.filter((c) => c.kib === heavy);
  const lo = row[0];
  const hi = row[row.length - 1];
  const table = [...groupBy(cells, (c) => c.kib)]
    .map(([k, r]) => `${k}KiB: ${r.map((c) => `${c.mbit} Mbit/s ${cellText(c)}`).join(', ')}`)
    .join('; ');
  const out: Finding[] = [];
  if (row.length < 2 || !hi.totalMs.length) out.push(noData('duration-vs-bandwidth', claim, PAPER.fig4, MVM_SPECS.bandwidth));
  else if (!lo.totalMs.length) {
    // nothing completed at the low rate: its duration exceeds the time each ran before max_time cancelled it
    const bound = Math.min(...lo.censoredMs);
    const scaled = (mean(hi.totalMs) * hi.mbit) / lo.mbit;
    out.push({
      id: 'duration-vs-bandwidth',
      claim,
      paper: PAPER.fig4,
      measured: `${table}; ${heavy}KiB at ${lo.mbit} Mbit/s: > ${fmt(bound / 1000)} s, where 1/bandwidth from ${hi.mbit} Mbit/s predicts ${fmt(scaled / 1000)} s`,
      verdict: bound > scaled ? 'holds' : 'inconclusive',
      reason:
        `none of ${lo.notCompleted} migrations completed within max_time at ${lo.mbit} Mbit/s (they do not converge)` +
        (bound > scaled
          ? '; the lower bound alone exceeds the 1/bandwidth prediction'
          : '; the lower bound does not exceed the 1/bandwidth prediction: raise max_time'),
      numbers: { mbit_lo: lo.mbit, mbit_hi: hi.mbit, total_lo_min_ms: bound, total_hi_ms: mean(hi.totalMs), scaled_lo_ms: scaled },
      test: null,
    });
  } else {
    // duration x bandwidth is the data moved (bit); constant if duration ~ 1/bandwidth, larger at low bandwidth if super-linear
    const g = greater(
      lo.totalMs.map((t) => t * lo.mbit),
      hi.totalMs.map((t) => t * hi.mbit),
    );
    const fd = mean(lo.totalMs) / mean(hi.totalMs);
    const fb = hi.mbit / lo.mbit;
    const notConv = lo.notCompleted > 0;
    // one migration per cell (--quick): the point estimates decide, and the reason says so
    const point = g.holds === null && lo.totalMs.length > 0 && hi.totalMs.length > 0 ? fd > fb : null;
    out.push({
      id: 'duration-vs-bandwidth',
      claim,
      paper: PAPER.fig4,
      measured: `${table}; ${heavy}KiB: bandwidth / ${fmt(fb)} -> duration x ${fmt(fd)}`,
      verdict:
        g.holds === null
          ? point === null
            ? 'inconclusive'
            : point || notConv
              ? 'holds'
              : 'does not hold'
          : g.holds || notConv
            ? 'holds'
            : 'does not hold',
      reason:
        g.holds === null
          ? point === null
            ? 'too few migrations per cell'
            : `duration x ${fmt(fd)} ${point ? '>' : '<='} bandwidth factor ${fmt(fb)}: point estimates (too few migrations per cell for a test)`
          : `duration x bandwidth at ${lo.mbit} vs ${hi.mbit} Mbit/s, one-sided Welch p ${fmt(g.test.p)}${notConv ? `; ${lo.notCompleted} did not complete at ${lo.mbit} Mbit/s` : ''}`,
      numbers: {
        mbit_lo: lo.mbit,
        mbit_hi: hi.mbit,
        total_lo_ms: mean(lo.totalMs),
        total_hi_ms: mean(hi.totalMs),
        duration_factor: fd,
        bandwidth_factor: fb,
      },
      test: g.test,
    });
  }
  const light = Math.min(...ok.map((c) => c.kib));
  // the lowest bandwidth where the light workload completed: the heavy one there either completed or ran into max_time
  const lightDone = ok.filter((c) => c.kib === light && c.totalMs.length);
  const lowBw = lightDone.length ? Math.min(...lightDone.map((c) => c.mbit)) : NaN;
  const a = ok.find((c) => c.kib === heavy && c.mbit === lowBw);
  const b = ok.find((c) => c.kib === light && c.mbit === lowBw);
  if (!a || !b || heavy === light) out.push(noData('stress-bytes', claim2, PAPER.bytes, MVM_SPECS.bandwidth));
  else if (!a.totalMs.length) {
    const bound = Math.min(...a.censoredMs);
    const longest = Math.max(...b.totalMs);
    out.push({
      id: 'stress-bytes',
      claim: claim2,
      paper: PAPER.bytes,
      measured: `at ${lowBw} Mbit/s: ${light}KiB ${fmt(mean(b.totalMs) / 1000)} s (longest ${fmt(longest / 1000)} s) vs ${heavy}KiB > ${fmt(bound / 1000)} s`,
      verdict: bound > longest ? 'holds' : 'inconclusive',
      reason: `every ${heavy}KiB migration at ${lowBw} Mbit/s ran into max_time (${a.censoredMs.length}); ${bound > longest ? 'longer than every' : 'not longer than the longest'} ${light}KiB one`,
      numbers: { mbit: lowBw, total_light_ms: mean(b.totalMs), total_heavy_min_ms: bound },
      test: null,
    });
  } else {
    const g = greater(a.totalMs, b.totalMs);
    const point = mean(a.totalMs) > mean(b.totalMs);
    out.push({
      id: 'stress-bytes',
      claim: claim2,
      paper: PAPER.bytes,
      measured: `at ${lowBw} Mbit/s: ${light}KiB ${fmt(mean(b.totalMs) / 1000)} s vs ${heavy}KiB ${fmt(mean(a.totalMs) / 1000)} s`,
      verdict: (g.holds ?? point) ? 'holds' : 'does not hold',
      reason: g.holds === null ? 'point estimates (too few migrations per cell for a test)' : `one-sided Welch p ${fmt(g.test.p)}`,
      numbers: { mbit: lowBw, total_light_ms: mean(b.totalMs), total_heavy_ms: mean(a.totalMs) },
      test: g.test,
    });
  }
  return out;
}

/** Concurrency of a plan: k for capped / per_server, the number of moves for parallel, 1 for sequential. */
function concurrency(m: Migration, moves: number): number {
  const k = m.plan?.kind;
  if (k === 'sequential') return 1;
  if (k === 'parallel') return moves;
  return m.plan?.k ?? moves;
}

export interface PlanComparison {
  concurrency: number;
  label: string;
  /** Per migration: duration / the same VM's mean sequential duration. */
  slowdown: number[];
  /** Per repetition: sequential mean completion / this completion. */
  speedup: number[];
}

export function planComparisons(obs: readonly Migration[]): PlanComparison[] {
  const planned = obs.filter((m) => m.plan);
  const moves = new Set(planned.map((m) => m.vm)).size;
  const byPlan = groupBy(planned, (m) => concurrency(m, moves));
  const seq = byPlan.get(1);
  if (!seq) return [];
  const seqDur = groupBy(seq, (m) => m.vm);
  const completion = (ms: Migration[]) =>
    [...groupBy(ms, (m) => m.rep).values()].flatMap((r) => {
      const c = r.find((m) => typeof m.plan_completion_ms === 'number')?.plan_completion_ms;
      if (typeof c === 'number') return [c];
      const st = nums(r.map((m) => m.plan?.start_ms ?? null));
      const en = nums(r.map((m) => m.plan?.end_ms ?? null));
      return st.length && en.length ? [Math.max(...en) - Math.min(...st)] : [];
    });
  const seqC = completion(seq);
  const out: PlanComparison[] = [];
  for (const [k, ms] of [...byPlan].sort((a, b) => a[0] - b[0])) {
    if (k === 1) continue;
    const slowdown = ms.flatMap((m) => {
      const base = nums((seqDur.get(m.vm) ?? []).map((x) => x.total_ms));
      return base.length && m.total_ms !== null ? [m.total_ms / mean(base)] : [];
    });
    const speedup = seqC.length ? completion(ms).map((c) => mean(seqC) / c) : [];
    out.push({ concurrency: k, label: `${ms[0].plan?.kind}${k < moves ? ` k=${k}` : ''}`, slowdown, speedup });
  }
  return out;
}

function scheduler(obs: Migration[]): Finding[] {
  const c1 = 'Migration slowdown against sequential grows with the parallelism cap';
  const c2 = 'Capped parallelism completes sooner than sequential (speedup > 1)';
  const pc = planComparisons(obs);
  if (pc.length === 0)
    return [
      noData('slowdown-grows', c1, PAPER.slowdown, MVM_SPECS.scheduler),
      noData('capped-speedup', c2, PAPER.speedup, MVM_SPECS.scheduler),
    ];
  const txt = (xs: number[]) => (xs.length ? `${fmt(mean(xs))} (${fmt(Math.min(...xs))}..${fmt(Math.max(...xs))})` : '-');
  const slowText = pc.map((p) => `${p.label}: ${txt(p.slowdown)}`).join('; ');
  const first = pc[0];
  const last = pc[pc.length - 1];
  const means = pc.map((p) => (p.slowdown.length ? mean(p.slowdown) : NaN));
  const monotone = means.every((m, i) => i === 0 || m >= means[i - 1]);
  const g = pc.length > 1 ? greater(last.slowdown, first.slowdown) : { holds: null, test: null };
  const out: Finding[] = [
    {
      id: 'slowdown-grows',
      claim: c1,
      paper: PAPER.slowdown,
      measured: `mean slowdown (duration / sequential): ${slowText}`,
      verdict: g.holds === null ? 'inconclusive' : g.holds && monotone ? 'holds' : 'does not hold',
      reason:
        g.holds === null
          ? 'needs two or more parallel plans'
          : `means ${monotone ? '' : 'not '}monotone in the cap; ${last.label} vs ${first.label}: one-sided Welch p ${fmt(g.test?.p)}`,
      numbers: Object.fromEntries(pc.map((p) => [`slowdown_k${p.concurrency}`, p.slowdown.length ? mean(p.slowdown) : null])),
      test: g.test ?? null,
    },
  ];
  const sp = first.speedup;
  out.push({
    id: 'capped-speedup',
    claim: c2,
    paper: PAPER.speedup,
    measured: `completion speedup vs sequential: ${pc.map((p) => `${p.label}: ${txt(p.speedup)}`).join('; ')}`,
    verdict: sp.length === 0 ? 'inconclusive' : mean(sp) > 1 ? 'holds' : 'does not hold',
    reason:
      sp.length === 0
        ? 'no completion times'
        : `${first.label}: mean speedup ${fmt(mean(sp))} over ${sp.length} repetition(s) (point estimate)`,
    numbers: Object.fromEntries(pc.map((p) => [`speedup_k${p.concurrency}`, p.speedup.length ? mean(p.speedup) : null])),
    test: null,
  });
  return out;
}

export function evaluateMvm(d: StudyData): Finding[] {
  const bw = specRun(d, MVM_SPECS.bandwidth);
  return [
    ...fig4(bandwidthCells(bw ? bw.run.migrations : [])),
    ...scheduler(obsOf(d, MVM_SPECS.scheduler)),
    {
      id: 'mvm-beats-capped',
      claim: 'mVM (duration model + network-aware parallelism) beats every fixed cap',
      paper: PAPER.mvm,
      measured: '-',
      verdict: 'not run',
      reason:
        "mVM's scheduler is not a migbench plan kind (sequential, parallel, capped, per_server, groups); only Memory Buddies' caps run",
      numbers: {},
      test: null,
    },
  ];
}
