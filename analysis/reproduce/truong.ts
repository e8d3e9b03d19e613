/**
 * Truong et al. (seed 003): guest memory stressed to 83..91 % with swap
 * active; response times of a web page, a file search, a 20 MB write and a
 * CPU-heavy operation before, during and after the migration (Fig. 3,
 * Table I); migration time over the stressed memory (Fig. 2).
 */
import { mean } from '../stats/descriptive.ts';
import type { Sample } from '../../harness/store/schema/index.ts';
import { asPct, condition, fmt, greater, noData, nums, obsOf, specRun, type Finding, type StudyData, type Verdict } from './common.ts';

export const TRUONG_SPECS = { mem: 'truong-mem' } as const;
const PERCENT_PATH = 'vms[0].workload.percent';

const PAPER = {
  migtime: 'Fig. 2: total migration time grows with stressed memory: 931 s (83 %) -> 954 s (91 %), 10 concurrent',
  during: 'Fig. 3: search response time during migration 2.299 s -> 5.606 s (+144 %) at 1830 MB (89 %)',
  after: 'Sec. V-B: after the move search stays slower, +72 % (Set 1), from I/O on the shared target host',
  grows: 'Table I: search slowdown during migration 3.307 / 4.389 / 6.241 s at 1830 / 1844 / 1860 MB',
  pagecpu: 'Sec. V-B: page and RSA-key ops impacted only at 1860 MB (91 %): 0.166 -> 0.785 s, 3.759 -> 6.3 s',
  io: 'Sec. V-B: "I/O operations are strongly impacted by the migration process" (search, 20 MB write)',
  conc: 'Fig. 2: block live migration lasts longer with fewer concurrent VMs (3 vs 10), nova-scheduler overhead',
};

export type Phase = 'before' | 'during' | 'after';

/** Response times (ms) of successful requests by stressed-memory percent, op and phase. */
export function responseTimes(
  samples: readonly Sample[],
  percentOf: (treatment: string) => number | null,
): Map<number, Map<string, Record<Phase, number[]>>> {
  const out = new Map<number, Map<string, Record<Phase, number[]>>>();
  for (const s of samples) {
    if (s.measurement !== 'workload' || s.fields.ok !== true) continue;
    const pct = percentOf(String(s.tags.treatment ?? ''));
    const phase = s.fields.phase;
    const ms = s.fields.response_ms;
    if (pct === null || typeof ms !== 'number' || (phase !== 'before' && phase !== 'during' && phase !== 'after')) continue;
    const op = String(s.tags.op ?? '').replace(/^probe-/, '');
    let byOp = out.get(pct);
    if (!byOp) out.set(pct, (byOp = new Map()));
    let r = byOp.get(op);
    if (!r) byOp.set(op, (r = { before: [], during: [], after: [] }));
    r[phase].push(ms);
  }
  return out;
}

const m = (xs: number[]) => (xs.length ? mean(xs) : NaN);
const pctChange = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? ((a - b) / b) * 100 : NaN);

export function evaluateTruong(d: StudyData): Finding[] {
  const r = specRun(d, TRUONG_SPECS.mem);
  const obs = obsOf(d, TRUONG_SPECS.mem);
  const claims = {
    migtime: 'Migration time grows with the stressed memory',
    during: 'File search is slower during the migration than before',
    after: 'File search stays slower after the migration',
    grows: 'The search slowdown during migration grows with the stressed memory',
    pagecpu: 'Page and CPU ops are impacted only at the highest stressed memory',
    io: 'The 20 MB write is slower during the migration than before',
  };
  if (!r || obs.length === 0)
    return [
      ...Object.entries(claims).map(([id, c]) => noData(id, c, PAPER[id as keyof typeof PAPER], TRUONG_SPECS.mem)),
      concurrencyNotRun(),
    ];
  const pctOf = (t: string) => asPct(condition(r.run, t, PERCENT_PATH));
  const levels = [...new Set(obs.map((x) => pctOf(x.treatment)).filter((x): x is number => x !== null))].sort((a, b) => a - b);
  const lo = levels[0];
  const hi = levels[levels.length - 1];
  const out: Finding[] = [];

  const tot = (p: number) => nums(obs.filter((x) => pctOf(x.treatment) === p).map((x) => x.total_ms));
  if (levels.length < 2) out.push(noData('migtime', claims.migtime, PAPER.migtime, TRUONG_SPECS.mem));
  else {
    const g = greater(tot(hi), tot(lo));
    out.push({
      id: 'migtime',
      claim: claims.migtime,
      paper: PAPER.migtime,
      measured: levels.map((p) => `${p} %: ${fmt(m(tot(p)) / 1000)} s`).join('; '),
      verdict: verdictOf(g.holds),
      reason: g.holds === null ? 'too few migrations' : `one-sided Welch p ${fmt(g.test.p)}`,
      numbers: { total_lo_ms: m(tot(lo)), total_hi_ms: m(tot(hi)), pct_lo: lo, pct_hi: hi },
      test: g.test,
    });
  }

  const rt = responseTimes(r.workload, pctOf);
  const op = (p: number, name: string) => rt.get(p)?.get(name) ?? { before: [], during: [], after: [] };
  const phases = (p: number, name: string) => {
    const x = op(p, name);
    return `${name} @${p} %: ${fmt(m(x.before))} / ${fmt(m(x.during))} / ${fmt(m(x.after))} ms (n ${x.before.length}/${x.during.length}/${x.after.length})`;
  };

  const sh = op(hi, 'search');
  const gd = greater(sh.during, sh.before);
  out.push({
    id: 'search-during',
    claim: claims.during,
    paper: PAPER.during,
    measured: `${phases(hi, 'search')} (before / during / after); ${fmt(pctChange(m(sh.during), m(sh.before)))} % during`,
    verdict: verdictOf(gd.holds),
    reason: gd.holds === null ? 'too few search samples before and during' : `one-sided Welch p ${fmt(gd.test.p)}`,
    numbers: { before_ms: m(sh.before), during_ms: m(sh.during), change_pct: pctChange(m(sh.during), m(sh.before)) },
    test: gd.test,
  });

  const ga = greater(sh.after, sh.before);
  out.push({
    id: 'search-after',
    claim: claims.after,
    paper: PAPER.after,
    measured: `${phases(hi, 'search')}; ${fmt(pctChange(m(sh.after), m(sh.before)))} % after`,
    verdict: ga.holds === null ? 'inconclusive' : ga.holds ? 'holds' : 'differs',
    reason:
      ga.holds === null
        ? 'too few search samples before and after'
        : ga.holds
          ? `one-sided Welch p ${fmt(ga.test.p)}`
          : `one-sided Welch p ${fmt(ga.test.p)}: the paper's lasting slowdown comes from the other VMs' I/O on the shared target host; here the destination runs nothing else`,
    numbers: { before_ms: m(sh.before), after_ms: m(sh.after), change_pct: pctChange(m(sh.after), m(sh.before)) },
    test: ga.test,
  });

  if (levels.length < 2) out.push(noData('grows', claims.grows, PAPER.grows, TRUONG_SPECS.mem));
  else {
    const sl = op(lo, 'search');
    const incHi = sh.during.map((x) => x - m(sh.before));
    const incLo = sl.during.map((x) => x - m(sl.before));
    const g = greater(incHi, incLo);
    out.push({
      id: 'grows',
      claim: claims.grows,
      paper: PAPER.grows,
      measured: `search during - before: ${fmt(m(incLo))} ms at ${lo} %, ${fmt(m(incHi))} ms at ${hi} %`,
      verdict: verdictOf(g.holds),
      reason: g.holds === null ? 'too few search samples' : `one-sided Welch p ${fmt(g.test.p)}`,
      numbers: { increase_lo_ms: m(incLo), increase_hi_ms: m(incHi) },
      test: g.test,
    });
  }

  {
    const hit = (p: number, name: string) => greater(op(p, name).during, op(p, name).before).holds;
    const atHi = ['page', 'cpu'].map((n) => hit(hi, n));
    const atLo = levels.length > 1 ? ['page', 'cpu'].map((n) => hit(lo, n)) : [null, null];
    let verdict: Verdict;
    if ([...atHi, ...atLo].some((x) => x === null)) verdict = 'inconclusive';
    else verdict = atHi.some((x) => x) && !atLo.some((x) => x) ? 'holds' : 'does not hold';
    const yes = (x: boolean | null) => (x === null ? '?' : x ? 'slower' : 'not slower');
    out.push({
      id: 'page-cpu-only-high',
      claim: claims.pagecpu,
      paper: PAPER.pagecpu,
      measured: [phases(lo, 'page'), phases(hi, 'page'), phases(lo, 'cpu'), phases(hi, 'cpu')].join('; '),
      verdict,
      reason: `during vs before (one-sided Welch p < 0.05): page ${yes(atLo[0])} at ${lo} %, ${yes(atHi[0])} at ${hi} %; cpu ${yes(atLo[1])} at ${lo} %, ${yes(atHi[1])} at ${hi} %`,
      numbers: {
        page_during_hi_ms: m(op(hi, 'page').during),
        page_before_hi_ms: m(op(hi, 'page').before),
        cpu_during_hi_ms: m(op(hi, 'cpu').during),
      },
      test: null,
    });
  }

  const w = op(hi, 'write20m');
  const gw = greater(w.during, w.before);
  out.push({
    id: 'io-write-during',
    claim: claims.io,
    paper: PAPER.io,
    measured: phases(hi, 'write20m'),
    verdict: verdictOf(gw.holds),
    reason: gw.holds === null ? 'too few write samples before and during' : `one-sided Welch p ${fmt(gw.test.p)}`,
    numbers: { before_ms: m(w.before), during_ms: m(w.during) },
    test: gw.test,
  });
  out.push(concurrencyNotRun());
  return out;
}

function verdictOf(h: boolean | null): Verdict {
  return h === null ? 'inconclusive' : h ? 'holds' : 'does not hold';
}

function concurrencyNotRun(): Finding {
  return {
    id: 'concurrency',
    claim: 'Fewer concurrent VMs make the block live migration last longer',
    paper: PAPER.conc,
    measured: '-',
    verdict: 'not run',
    reason:
      'an OpenStack nova-scheduler overhead with block migration; this spec migrates one VM live (block mode and a multi-VM spec are to come)',
    numbers: {},
    test: null,
  };
}
