/**
 * Salfner et al. (seed 002): downtime and migration time over WSET x RATE
 * (Figs. 1-2, Table II), and LOAD and FILL without effect (Section IV).
 * WSET and RATE are read from each record's workload label, so any spec
 * with the dirty generator can be evaluated.
 */
import { max, mean, min, sd } from '../stats/descriptive.ts';
import { parseDuration, parsePercent, parseSize } from '../../harness/spec/units.ts';
import type { Migration } from '../rundir.ts';
import {
  downtimeMs,
  fmt,
  greater,
  groupBy,
  labelFields,
  noData,
  noEffect,
  nums,
  obsOf,
  ratio,
  s,
  specRun,
  type Finding,
  type StudyData,
  type Verdict,
} from './common.ts';

export const SALFNER_SPECS = { grid: 'salfner-grid', loadFill: 'salfner-lf' } as const;

export interface DirtyParams {
  wsetMiB: number;
  /** Blocks (pages) written per ms: BPC / PERIOD. */
  rate: number;
  fillPct: number;
}

/** WSET, RATE and FILL of a dirty-generator record; null for other workloads. */
export function dirtyParams(m: Pick<Migration, 'workload'>): DirtyParams | null {
  const { kind, fields } = labelFields(m.workload);
  if (kind !== 'dirty') return null;
  const wset = parseSize(fields.wset ?? '');
  const period = parseDuration(fields.period ?? '');
  const bpc = Number(fields.bpc);
  const fill = parsePercent(fields.fill ?? '100%');
  if (wset === null || period === null || !(period > 0) || !Number.isFinite(bpc) || fill === null) return null;
  return { wsetMiB: wset / 2 ** 20, rate: bpc / period, fillPct: fill };
}

export interface GridCell {
  wsetMiB: number;
  rate: number;
  n: number;
  /** Migrations of the cell that did not complete (cancelled at max_time or failed). */
  notCompleted: number;
  totalMs: number[];
  downtimeMs: number[];
}

/** Mean responses per WSET x RATE cell (FILL 100 % only), sorted by WSET then RATE. */
export function grid(all: readonly Migration[]): GridCell[] {
  const cells = new Map<string, GridCell>();
  for (const m of all) {
    if (m.partial) continue;
    const p = dirtyParams(m);
    if (!p || p.fillPct !== 100) continue;
    const key = `${p.wsetMiB}|${p.rate}`;
    let c = cells.get(key);
    if (!c) cells.set(key, (c = { wsetMiB: p.wsetMiB, rate: p.rate, n: 0, notCompleted: 0, totalMs: [], downtimeMs: [] }));
    if (m.status !== 'completed') {
      c.notCompleted++;
      continue;
    }
    c.n++;
    if (m.total_ms !== null) c.totalMs.push(m.total_ms);
    const d = downtimeMs(m);
    if (d !== null) c.downtimeMs.push(d);
  }
  return [...cells.values()].sort((a, b) => a.wsetMiB - b.wsetMiB || a.rate - b.rate);
}

const meanOf = (xs: number[]) => (xs.length ? mean(xs) : NaN);

function cellText(c: GridCell | undefined, what: 'totalMs' | 'downtimeMs'): string {
  if (!c) return '-';
  const v = c[what];
  const unit = what === 'totalMs' ? s(meanOf(v)) : `${fmt(meanOf(v))} ms`;
  return `${unit}${c.notCompleted ? ` (${c.notCompleted} not completed)` : ''}`;
}

const PAPER = {
  downtime: 'Xen: downtime increases with WSET (linearly) and with RATE (Fig. 1); VMware similar',
  migtime: 'Xen: migration time grows with RATE up to a jump near the link speed (Fig. 2)',
  jump: 'Xen: above the jump, migration time decreases with RATE (pre-copy stops on round/data limits)',
  rate0: 'Xen: "There is no effect of WSET if RATE is zero" (Sec. V)',
  load: 'LOAD 0..100 %: no impact, 95 % CI within +-1 s (time) and +-10 % (downtime)',
  fill: 'FILL: "no effect on downtime or migration time" (both products)',
  table2: 'Table II, max:min of treatment means: Xen migration 9.01, downtime 3.17; VMware 2.24, 16.27',
};

function downtimeFinding(cells: GridCell[]): Finding {
  const claim = 'Downtime increases with WSET and with RATE';
  if (cells.length < 2) return noData('downtime-wset-rate', claim, PAPER.downtime, SALFNER_SPECS.grid);
  const ws = [...new Set(cells.map((c) => c.wsetMiB))];
  const rs = [...new Set(cells.map((c) => c.rate))];
  const [w0, w1, r0, r1] = [min(ws), max(ws), min(rs), max(rs)];
  const pool = (f: (c: GridCell) => boolean) => cells.filter(f).flatMap((c) => c.downtimeMs);
  const byW = greater(
    pool((c) => c.wsetMiB === w1),
    pool((c) => c.wsetMiB === w0),
  );
  const byR = greater(
    pool((c) => c.rate === r1),
    pool((c) => c.rate === r0),
  );
  const all = cells.flatMap((c) => c.downtimeMs);
  const measured =
    `mean downtime WSET ${w0} -> ${w1} MiB: ${fmt(meanOf(pool((c) => c.wsetMiB === w0)))} -> ${fmt(meanOf(pool((c) => c.wsetMiB === w1)))} ms; ` +
    `RATE ${fmt(r0)} -> ${fmt(r1)} blocks/ms: ${fmt(meanOf(pool((c) => c.rate === r0)))} -> ${fmt(meanOf(pool((c) => c.rate === r1)))} ms; ` +
    `all cells ${fmt(min(all))}..${fmt(max(all))} ms`;
  let verdict: Verdict;
  let reason: string;
  if (byW.holds && byR.holds) {
    verdict = 'holds';
    reason = 'both main effects positive (one-sided Welch p < 0.05)';
  } else if (byW.holds === null || byR.holds === null) {
    verdict = 'inconclusive';
    reason = 'too few downtimes per level';
  } else {
    verdict = 'differs';
    reason =
      `WSET effect ${byW.holds ? 'positive' : 'not significant'} (p ${fmt(byW.test.p)}), ` +
      `RATE effect ${byR.holds ? 'positive' : 'not significant'} (p ${fmt(byR.test.p)}): ` +
      'QEMU stops pre-copy only once what is left fits downtime_limit at the measured bandwidth, so downtime is bounded near ' +
      'the limit and a larger working set leaves no more to copy at the stop; Xen 3.4 stopped on round/data limits and sent ' +
      'whatever was dirty';
  }
  return {
    id: 'downtime-wset-rate',
    claim,
    paper: PAPER.downtime,
    measured,
    verdict,
    reason,
    numbers: { p_wset: byW.test.p, p_rate: byR.test.p, downtime_min_ms: min(all), downtime_max_ms: max(all) },
    test: { ...byW.test, name: 'welch (WSET max vs min)', detail: `${byW.test.detail}; RATE: p ${fmt(byR.test.p)}` },
  };
}

function migtimeRateFinding(cells: GridCell[]): Finding {
  const claim = 'Migration time grows with RATE (at a fixed WSET)';
  const w1 = max(cells.map((c) => c.wsetMiB));
  const row = cells.filter((c) => c.wsetMiB === w1 && c.totalMs.length > 0);
  if (row.length < 2) return noData('migtime-rate', claim, PAPER.migtime, SALFNER_SPECS.grid);
  const lo = row[0];
  const hi = row[row.length - 1];
  const g = greater(hi.totalMs, lo.totalMs);
  const f = ratio(meanOf(hi.totalMs), meanOf(lo.totalMs));
  return {
    id: 'migtime-rate',
    claim,
    paper: PAPER.migtime,
    measured: `WSET ${w1} MiB: ${row.map((c) => `RATE ${fmt(c.rate)}: ${cellText(c, 'totalMs')}`).join('; ')} (x${fmt(f)})`,
    verdict: g.holds === null ? 'inconclusive' : g.holds ? 'holds' : 'does not hold',
    reason:
      g.holds === null ? 'too few migrations per cell' : `one-sided Welch p ${fmt(g.test.p)} (RATE ${fmt(hi.rate)} vs ${fmt(lo.rate)})`,
    numbers: {
      wset_mib: w1,
      rate_lo: lo.rate,
      rate_hi: hi.rate,
      total_lo_ms: meanOf(lo.totalMs),
      total_hi_ms: meanOf(hi.totalMs),
      factor: f,
    },
    test: g.test,
  };
}

function jumpFinding(cells: GridCell[]): Finding {
  const claim = 'Above a jump near the link speed, migration time decreases with RATE';
  if (cells.length < 2) return noData('migtime-above-jump', claim, PAPER.jump, SALFNER_SPECS.grid);
  const drops: string[] = [];
  let notConverged = 0;
  for (const [w, row] of groupBy(cells, (c) => c.wsetMiB)) {
    const r = row.filter((c) => c.totalMs.length).sort((a, b) => a.rate - b.rate);
    notConverged += row.reduce((n, c) => n + c.notCompleted, 0);
    for (let i = 1; i < r.length; i++) {
      const g = greater(r[i - 1].totalMs, r[i].totalMs);
      if (g.holds)
        drops.push(
          `WSET ${w} MiB: RATE ${fmt(r[i - 1].rate)} -> ${fmt(r[i].rate)}: ${s(meanOf(r[i - 1].totalMs))} -> ${s(meanOf(r[i].totalMs))}`,
        );
    }
  }
  const measured = drops.length
    ? `significant decreases: ${drops.join('; ')}`
    : `no significant decrease with RATE at any WSET; ${notConverged} migration(s) did not complete`;
  return {
    id: 'migtime-above-jump',
    claim,
    paper: PAPER.jump,
    measured,
    verdict: drops.length ? 'holds' : 'differs',
    reason: drops.length
      ? 'migration time fell at a higher RATE'
      : 'QEMU pre-copy has no round or data limit: it iterates until the rest fits downtime_limit, so a RATE near the ' +
        'bandwidth lengthens the migration (or it never converges and max_time cancels it) instead of shortening it',
    numbers: { decreases: drops.length, not_completed: notConverged },
    test: { name: 'welch', p: null, detail: 'one-sided, each adjacent RATE pair at each WSET' },
  };
}

function rate0Finding(cells: GridCell[]): Finding {
  const claim = 'No effect of WSET on migration time when RATE is 0';
  const r0 = cells.filter((c) => c.rate === 0 && c.totalMs.length).sort((a, b) => a.wsetMiB - b.wsetMiB);
  if (r0.length < 2) return noData('wset-at-rate0', claim, PAPER.rate0, SALFNER_SPECS.grid);
  const lo = r0[0];
  const hi = r0[r0.length - 1];
  const margin = 0.1 * meanOf(lo.totalMs);
  const ne = noEffect(hi.totalMs, lo.totalMs, margin);
  const measured = `RATE 0: ${r0.map((c) => `WSET ${c.wsetMiB} MiB ${cellText(c, 'totalMs')}`).join('; ')}`;
  const differs = ne.verdict === 'does not hold';
  return {
    id: 'wset-at-rate0',
    claim,
    paper: PAPER.rate0,
    measured,
    verdict: differs ? 'differs' : ne.verdict,
    reason: differs
      ? 'QEMU sends a zero page as a flag, not 4 KiB: a working set written once is transferred even when idle, so WSET ' +
        'sets migration time at RATE 0; Xen 3.4 sent every page of VMSIZE whatever it held'
      : `equivalence margin +-10 % of WSET ${lo.wsetMiB} MiB's mean (${s(margin)})`,
    numbers: { total_lo_ms: meanOf(lo.totalMs), total_hi_ms: meanOf(hi.totalMs), diff_ms: ne.w?.diff ?? null, margin_ms: margin },
    test: ne.test,
  };
}

/** Migrations of a load-fill run grouped by their workload label. */
function byLabel(ms: Migration[]): Map<string, Migration[]> {
  return groupBy(ms, (m) => m.workload);
}

function noEffectFinding(
  id: string,
  claim: string,
  paper: string,
  base: { label: string; ms: Migration[] } | undefined,
  others: { label: string; ms: Migration[] }[],
): Finding {
  if (!base || others.length === 0) return noData(id, claim, paper, SALFNER_SPECS.loadFill);
  const tb = nums(base.ms.map((m) => m.total_ms));
  const db = nums(base.ms.map(downtimeMs));
  const parts: string[] = [`${base.label}: ${s(mean(tb))}, downtime ${fmt(db.length ? mean(db) : NaN)} ms (n=${tb.length})`];
  const verdicts: Verdict[] = [];
  const numbers: Record<string, number | null> = { base_total_ms: mean(tb) };
  let test: Finding['test'] = null;
  others.forEach((o, i) => {
    const to = nums(o.ms.map((m) => m.total_ms));
    const dt = nums(o.ms.map(downtimeMs));
    // margins: 10 % of the baseline (at least 250 ms) for time, 20 % (at least 50 ms) for downtime
    const nt = noEffect(to, tb, Math.max(0.1 * mean(tb), 250));
    const nd = noEffect(dt, db, Math.max(0.2 * (db.length ? mean(db) : 0), 50));
    verdicts.push(nt.verdict, nd.verdict);
    parts.push(
      `${o.label}: ${s(mean(to))} (${nt.verdict}), downtime ${fmt(dt.length ? mean(dt) : NaN)} ms (${nd.verdict}) (n=${to.length})`,
    );
    numbers[`total_ms_${i + 1}`] = to.length ? mean(to) : null;
    numbers[`diff_total_ms_${i + 1}`] = nt.w?.diff ?? null;
    numbers[`diff_downtime_ms_${i + 1}`] = nd.w?.diff ?? null;
    if (!test || nt.verdict !== 'holds') test = { ...nt.test, detail: `${o.label} vs ${base.label}, time: ${nt.test.detail}` };
  });
  const verdict: Verdict = verdicts.includes('does not hold')
    ? 'does not hold'
    : verdicts.every((v) => v === 'holds')
      ? 'holds'
      : 'inconclusive';
  const reason =
    verdict === 'holds'
      ? 'every 95 % CI of the difference inside the margin (10 % of time, 20 % of downtime)'
      : verdict === 'does not hold'
        ? 'a difference beyond the margin with its CI excluding 0'
        : 'CIs too wide for the margin: more repetitions needed';
  return { id, claim, paper, measured: parts.join('; '), verdict, reason, numbers, test };
}

function loadFinding(ms: Migration[]): Finding {
  const g = byLabel(ms);
  const idle = g.get('idle');
  const cpu = [...g].filter(([l]) => l.startsWith('cpu ')).map(([label, m]) => ({ label, ms: m }));
  return noEffectFinding(
    'load-no-effect',
    'CPU LOAD has no effect on migration time or downtime',
    PAPER.load,
    idle && { label: 'idle', ms: idle },
    cpu,
  );
}

function fillFinding(ms: Migration[], gridMs: Migration[]): Finding {
  const dirty = [...byLabel(ms)].map(([label, m]) => ({ label, ms: m, p: dirtyParams(m[0]) })).filter((x) => x.p);
  const low = dirty.filter((x) => x.p!.fillPct < 100);
  const same = (a: DirtyParams, b: DirtyParams) => a.wsetMiB === b.wsetMiB && a.rate === b.rate;
  let full = dirty.find((x) => x.p!.fillPct === 100 && low.some((l) => same(l.p!, x.p!)));
  // the fill-100 % baseline from the WSET x RATE grid when the load-fill run lacks it
  if (!full && low.length) {
    const gm = gridMs.filter((m) => {
      const p = dirtyParams(m);
      return p && p.fillPct === 100 && same(p, low[0].p!);
    });
    if (gm.length) full = { label: gm[0].workload, ms: gm, p: dirtyParams(gm[0]) };
  }
  return noEffectFinding('fill-no-effect', 'FILL (share of each page written) has no effect', PAPER.fill, full, low);
}

function variabilityFinding(cells: GridCell[]): Finding {
  const claim = 'Migration time and downtime vary several-fold with the memory load (Table II)';
  const withT = cells.filter((c) => c.totalMs.length);
  const withD = cells.filter((c) => c.downtimeMs.length);
  if (withT.length < 2) return noData('variability', claim, PAPER.table2, SALFNER_SPECS.grid);
  const stats = (cs: GridCell[], k: 'totalMs' | 'downtimeMs') => {
    const means = cs.map((c) => mean(c[k]));
    const all = cs.flatMap((c) => c[k]);
    return {
      mean: mean(all),
      ratioMeans: max(means) / min(means),
      ratioAll: max(all) / min(all),
      sdMax: max(cs.map((c) => (c[k].length > 1 ? sd(c[k]) : 0))),
      sdAll: sd(all),
    };
  };
  const t = stats(withT, 'totalMs');
  const d = withD.length >= 2 ? stats(withD, 'downtimeMs') : null;
  const line = (n: string, x: ReturnType<typeof stats>, u: (v: number) => string) =>
    `${n}: mean ${u(x.mean)}, max:min of means ${fmt(x.ratioMeans)}, overall ${fmt(x.ratioAll)}, sd max ${u(x.sdMax)}, overall ${u(x.sdAll)}`;
  const ms = (v: number) => `${fmt(v)} ms`;
  const sec = (v: number) => s(v);
  const big = Math.max(t.ratioMeans, d?.ratioMeans ?? 0);
  return {
    id: 'variability',
    claim,
    paper: PAPER.table2,
    measured: [line('migration', t, sec), d ? line('downtime', d, ms) : 'downtime: -'].join('; '),
    verdict: big >= 2 ? 'holds' : 'does not hold',
    reason: `largest max:min ratio of treatment means ${fmt(big)} (holds at >= 2)`,
    numbers: {
      migration_mean_ms: t.mean,
      migration_ratio_means: t.ratioMeans,
      migration_ratio_all: t.ratioAll,
      downtime_mean_ms: d?.mean ?? null,
      downtime_ratio_means: d?.ratioMeans ?? null,
      downtime_ratio_all: d?.ratioAll ?? null,
    },
    test: null,
  };
}

export function evaluateSalfner(d: StudyData): Finding[] {
  const gridRun = specRun(d, SALFNER_SPECS.grid);
  const gridAll = gridRun ? gridRun.run.migrations : [];
  const cells = grid(gridAll);
  const lf = obsOf(d, SALFNER_SPECS.loadFill);
  return [
    downtimeFinding(cells),
    migtimeRateFinding(cells),
    jumpFinding(cells),
    rate0Finding(cells),
    loadFinding(lf),
    fillFinding(lf, obsOf(d, SALFNER_SPECS.grid)),
    variabilityFinding(cells),
  ];
}
