/**
 * Iffländer et al. (seed 004): pre-operation, downtime and post-operation
 * phases of a migration over bandwidth, latency and drop rate (Sec. 5, Figs.
 * 3-5; Sec. 6 for latency), live migration only until block migration lands.
 * The 0 ms / 0 % baselines are the same-bandwidth cells of the bandwidth spec.
 */
import { mean } from '../stats/descriptive.ts';
import {
  asMbit,
  asMs,
  asPct,
  condition,
  downtimeMs,
  fmt,
  greater,
  noData,
  noEffect,
  nums,
  obsWithRun,
  type Finding,
  type Obs,
  type StudyData,
} from './common.ts';

export const IFFLAND_SPECS = { bandwidth: 'iffl-bw', latency: 'iffl-latency', drop: 'iffl-drop' } as const;
const ALL = Object.values(IFFLAND_SPECS);
const LINK = 'testbed.shaping[0]';

const PAPER = {
  bw: 'Fig. 3: migration time grows as throughput falls; 1000 -> 100 Mbit/s a small step next to 100 -> 10 Mbit/s',
  preop: 'Sec. 5.1: "The majority of the total duration is spent on the preoperation time"',
  downtime: 'Fig. 4: downtimes "slightly sensible" to throughput, weaker than pre-operation times',
  postop: 'Sec. 5.1: no statistically significant effect of throughput on post-operation time',
  drop: 'Sec. 5.2: 0 -> 1 % drop +38..77 %, 1 -> 5 % +1164..2525 % migration time; ideal protocol x1.0101 / x1.0526',
  dropDown: 'Sec. 5.2: downtime increases slowly with drop rate, at least doubling 0 -> 5 %',
  dropPost: 'Sec. 5.2: post-operation time less sensitive to drop (+~60 % 0 -> 5 %) than pre-operation',
  latency: 'Sec. 6: at 100 Mbit/s and 100 ms delay "total migration takes longer especially due to the increased latency"',
  block: 'Sec. 5: live migration faster than block migration at every bandwidth and drop rate; live downtimes up to 50 % lower',
};

export interface Cond {
  mbit: number | null;
  delayMs: number;
  lossPct: number;
  memMiB: number | null;
}

export function condOf(o: Obs): Cond {
  const c = (k: string) => condition(o.run, o.m.treatment, `${LINK}.${k}`);
  return {
    mbit: o.m.link_rate_mbit ?? asMbit(c('rate')),
    delayMs: asMs(c('delay')) ?? 0,
    lossPct: asPct(c('loss')) ?? 0,
    memMiB: o.m.memory_mib,
  };
}

type Metric = 'total_ms' | 'preop_ms' | 'postop_ms' | 'downtime';
const val = (o: Obs, k: Metric) => (k === 'downtime' ? downtimeMs(o.m) : o.m[k]);
const mm = (xs: number[]) => (xs.length ? mean(xs) : NaN);

export function evaluateIffland(d: StudyData): Finding[] {
  const obs = obsWithRun(d, ALL).map((o) => ({ o, c: condOf(o) }));
  const sel = (f: (c: Cond) => boolean, k: Metric) => nums(obs.filter((x) => f(x.c)).map((x) => val(x.o, k)));
  const clean = (c: Cond) => c.delayMs === 0 && c.lossPct === 0;
  const mems = [...new Set(obs.map((x) => x.c.memMiB).filter((x): x is number => x !== null))].sort((a, b) => a - b);
  const mem = mems[0];
  const bws = [
    ...new Set(
      obs
        .filter((x) => clean(x.c) && x.c.memMiB === mem)
        .map((x) => x.c.mbit)
        .filter((x): x is number => x !== null),
    ),
  ].sort((a, b) => a - b);
  const out: Finding[] = [];
  const claim = {
    bw: 'Migration time grows as bandwidth falls, most at the lowest bandwidth',
    preop: 'Pre-operation time is most of the migration time',
    downtime: 'Downtime is less sensitive to bandwidth than pre-operation time',
    postop: 'Bandwidth has no effect on post-operation time',
    drop: 'Drop inflates migration time far beyond what the lost packets alone explain',
    dropDown: 'Downtime grows with the drop rate',
    dropPost: 'Post-operation time is less sensitive to drop than pre-operation time',
    latency: 'Added latency lengthens the migration',
  };
  const at =
    (mbit: number, extra: (c: Cond) => boolean = clean) =>
    (c: Cond) =>
      c.mbit === mbit && c.memMiB === mem && extra(c);

  if (bws.length < 2) {
    for (const id of ['bw', 'preop', 'downtime', 'postop'] as const)
      out.push(noData(`bw-${id}`, claim[id], PAPER[id], IFFLAND_SPECS.bandwidth));
  } else {
    const lo = bws[0];
    const hi = bws[bws.length - 1];
    const t = (b: number) => sel(at(b), 'total_ms');
    const g = greater(t(lo), t(hi));
    const steps = bws.map((b) => `${b} Mbit/s ${fmt(mm(t(b)) / 1000)} s`).join(', ');
    const bySize = mems
      .map((mi) => `${mi} MiB @${hi}: ${fmt(mm(sel((c) => clean(c) && c.mbit === hi && c.memMiB === mi, 'total_ms')) / 1000)} s`)
      .join(', ');
    out.push({
      id: 'bw-migtime',
      claim: claim.bw,
      paper: PAPER.bw,
      measured: `${mem} MiB guest: ${steps}; ${bySize}`,
      verdict: g.holds === null ? 'inconclusive' : g.holds ? 'holds' : 'does not hold',
      reason: g.holds === null ? 'too few migrations per bandwidth' : `${lo} vs ${hi} Mbit/s: one-sided Welch p ${fmt(g.test.p)}`,
      numbers: Object.fromEntries(bws.map((b) => [`total_ms_${b}mbit`, mm(t(b))])),
      test: g.test,
    });
    const all = obs.filter((x) => clean(x.c));
    const shares = nums(all.map((x) => (x.o.m.preop_ms !== null && x.o.m.total_ms ? x.o.m.preop_ms / x.o.m.total_ms : null)));
    out.push({
      id: 'bw-preop',
      claim: claim.preop,
      paper: PAPER.preop,
      measured: `pre-operation share of migration time: mean ${fmt(mm(shares) * 100)} % (${fmt(Math.min(...shares) * 100)}..${fmt(Math.max(...shares) * 100)} %, n ${shares.length})`,
      verdict: shares.length === 0 ? 'inconclusive' : mm(shares) > 0.5 ? 'holds' : 'does not hold',
      reason: shares.length === 0 ? 'no pre-operation times' : 'mean share over every bandwidth and size, holds above 50 %',
      numbers: { preop_share: mm(shares) },
      test: null,
    });
    const rel = (k: Metric) => mm(sel(at(lo), k)) / mm(sel(at(hi), k));
    const rDown = rel('downtime');
    const rPre = rel('preop_ms');
    out.push({
      id: 'bw-downtime',
      claim: claim.downtime,
      paper: PAPER.downtime,
      measured: `${hi} -> ${lo} Mbit/s: downtime ${fmt(mm(sel(at(hi), 'downtime')))} -> ${fmt(mm(sel(at(lo), 'downtime')))} ms (x${fmt(rDown)}), pre-operation x${fmt(rPre)}`,
      verdict: !Number.isFinite(rDown) || !Number.isFinite(rPre) ? 'inconclusive' : rDown < rPre ? 'holds' : 'does not hold',
      reason: 'ratio of means at the lowest to the highest bandwidth (point estimates)',
      numbers: { downtime_factor: rDown, preop_factor: rPre },
      test: null,
    });
    const pb = sel(at(hi), 'postop_ms');
    const ne = noEffect(sel(at(lo), 'postop_ms'), pb, Math.max(0.2 * mm(pb), 20));
    out.push({
      id: 'bw-postop',
      claim: claim.postop,
      paper: PAPER.postop,
      measured: `post-operation ${fmt(mm(pb))} ms at ${hi} Mbit/s, ${fmt(mm(sel(at(lo), 'postop_ms')))} ms at ${lo} Mbit/s`,
      verdict: ne.verdict,
      reason: `equivalence margin +-${fmt(ne.margin)} ms (20 % of the ${hi} Mbit/s mean, at least 20 ms)`,
      numbers: { postop_hi_ms: mm(pb), postop_lo_ms: mm(sel(at(lo), 'postop_ms')) },
      test: ne.test,
    });
  }

  // drop: every loss level at the drop spec's bandwidth, the 0 % baseline from the bandwidth spec
  const dropBw = obs.find((x) => x.c.lossPct > 0)?.c.mbit ?? null;
  const levelsAt = (bw: number | null, f: (c: Cond) => boolean, k: (c: Cond) => number) =>
    bw === null
      ? []
      : [...new Set(obs.filter((x) => x.c.mbit === bw && x.c.memMiB === mem && f(x.c)).map((x) => k(x.c)))].sort((a, b) => a - b);
  const losses = levelsAt(
    dropBw,
    (c) => c.delayMs === 0,
    (c) => c.lossPct,
  );
  if (dropBw === null || losses.length < 2 || losses[0] !== 0) {
    for (const id of ['drop', 'dropDown', 'dropPost'] as const)
      out.push(
        noData(
          `${id === 'drop' ? 'drop-migtime' : id === 'dropDown' ? 'drop-downtime' : 'drop-postop'}`,
          claim[id],
          PAPER[id],
          IFFLAND_SPECS.drop,
        ),
      );
  } else {
    const atL = (l: number) => (c: Cond) => c.mbit === dropBw && c.delayMs === 0 && c.lossPct === l && c.memMiB === mem;
    const top = losses[losses.length - 1];
    const t0 = sel(atL(0), 'total_ms');
    const tTop = sel(atL(top), 'total_ms');
    const ideal = 1 / (1 - top / 100);
    // against the ideal protocol: the baseline times 1/(1-d)
    const g = greater(
      tTop,
      t0.map((x) => x * ideal),
    );
    const steps = losses.map((l) => `${l} %: ${fmt(mm(sel(atL(l), 'total_ms')) / 1000)} s`).join(', ');
    out.push({
      id: 'drop-migtime',
      claim: claim.drop,
      paper: PAPER.drop,
      measured: `${dropBw} Mbit/s, ${mem} MiB: ${steps}; x${fmt(mm(tTop) / mm(t0))} at ${top} % vs ideal x${fmt(ideal)}`,
      verdict: g.holds === null ? 'inconclusive' : g.holds ? 'holds' : 'does not hold',
      reason:
        g.holds === null
          ? 'too few migrations per drop rate'
          : `time at ${top} % vs 0 % x ${fmt(ideal)}: one-sided Welch p ${fmt(g.test.p)}`,
      numbers: Object.fromEntries([...losses.map((l) => [`total_ms_${l}pct`, mm(sel(atL(l), 'total_ms'))]), ['ideal_factor', ideal]]),
      test: g.test,
    });
    const gd = greater(sel(atL(top), 'downtime'), sel(atL(0), 'downtime'));
    out.push({
      id: 'drop-downtime',
      claim: claim.dropDown,
      paper: PAPER.dropDown,
      measured: losses.map((l) => `${l} %: ${fmt(mm(sel(atL(l), 'downtime')))} ms`).join(', '),
      verdict: gd.holds === null ? 'inconclusive' : gd.holds ? 'holds' : 'does not hold',
      reason: gd.holds === null ? 'too few downtimes' : `${top} % vs 0 %: one-sided Welch p ${fmt(gd.test.p)}`,
      numbers: Object.fromEntries(losses.map((l) => [`downtime_ms_${l}pct`, mm(sel(atL(l), 'downtime'))])),
      test: gd.test,
    });
    const r = (k: Metric) => mm(sel(atL(top), k)) / mm(sel(atL(0), k));
    out.push({
      id: 'drop-postop',
      claim: claim.dropPost,
      paper: PAPER.dropPost,
      measured: `0 -> ${top} %: post-operation x${fmt(r('postop_ms'))}, pre-operation x${fmt(r('preop_ms'))}`,
      verdict:
        !Number.isFinite(r('postop_ms')) || !Number.isFinite(r('preop_ms'))
          ? 'inconclusive'
          : r('postop_ms') < r('preop_ms')
            ? 'holds'
            : 'does not hold',
      reason: 'ratio of means (point estimates)',
      numbers: { postop_factor: r('postop_ms'), preop_factor: r('preop_ms') },
      test: null,
    });
  }

  const latBw = obs.find((x) => x.c.delayMs > 0)?.c.mbit ?? null;
  const delays = levelsAt(
    latBw,
    (c) => c.lossPct === 0,
    (c) => c.delayMs,
  );
  if (latBw === null || delays.length < 2 || delays[0] !== 0)
    out.push(noData('latency-migtime', claim.latency, PAPER.latency, IFFLAND_SPECS.latency));
  else {
    const atD = (dl: number) => (c: Cond) => c.mbit === latBw && c.lossPct === 0 && c.delayMs === dl && c.memMiB === mem;
    const top = delays[delays.length - 1];
    const g = greater(sel(atD(top), 'total_ms'), sel(atD(0), 'total_ms'));
    out.push({
      id: 'latency-migtime',
      claim: claim.latency,
      paper: PAPER.latency,
      measured: `${latBw} Mbit/s: ${delays.map((dl) => `${dl} ms one-way: ${fmt(mm(sel(atD(dl), 'total_ms')) / 1000)} s`).join(', ')}`,
      verdict: g.holds === null ? 'inconclusive' : g.holds ? 'holds' : 'does not hold',
      reason: g.holds === null ? 'too few migrations per delay' : `${top} ms vs 0 ms: one-sided Welch p ${fmt(g.test.p)}`,
      numbers: Object.fromEntries(delays.map((dl) => [`total_ms_${dl}ms`, mm(sel(atD(dl), 'total_ms'))])),
      test: g.test,
    });
  }

  out.push({
    id: 'live-vs-block',
    claim: 'Live migration is faster than block migration, with lower downtimes',
    paper: PAPER.block,
    measured: '-',
    verdict: 'not run',
    reason: 'block migration (migration.mode: block with a guest disk) is being added; its treatments join these specs when it lands',
    numbers: {},
    test: null,
  });
  return out;
}
