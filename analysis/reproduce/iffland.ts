/**
 * Iffländer et al. (seed 004): pre-operation, downtime and post-operation
 * phases of a migration over bandwidth, latency and drop rate (Sec. 5, Figs.
 * 3-5; Sec. 6 for latency), live migration only until block migration lands.
 * The 0 ms / 0 % baselines are the same-bandwidth cells of the bandwidth spec.
 */
import { mean } from '../stats/descriptive.ts';
import type { Migration } from '../rundir.ts';
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
  notRun,
  nums,
  obsWithRun,
  type Finding,
  type Obs,
  type StudyData,
} from './common.ts';

export const IFFLAND_SPECS = { bandwidth: 'iffl-bw', latency: 'iffl-latency', drop: 'iffl-drop', block: 'iffl-block' } as const;
/** The live-migration specs of the network factors (the block spec is evaluated on its own). */
const NETWORK = [IFFLAND_SPECS.bandwidth, IFFLAND_SPECS.latency, IFFLAND_SPECS.drop];
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
  block:
    'Sec. 5.1, Fig. 3: "Live migration is faster than block migration"; Sec. 5.2: the absolute advantage grows with flavor and drop rate',
  blockPre:
    'Sec. 5.1: pre-operation time holds the copy of the first snapshot; Sec. 5.2: live migration has the shorter pre-operation time',
  blockDown: 'Sec. 5.1, Fig. 4: "Live migration downtimes are always below the block migration downtimes by up to 50%"',
  blockPost: 'Sec. 5.1: no statistically significant effect of the migration mode on post-operation time',
  blockSize: 'Sec. 2: block migration moves the disks too, so "the total data volume rises"; Sec. 5.2: the advantage grows with the flavor',
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
  const obs = obsWithRun(d, NETWORK).map((o) => ({ o, c: condOf(o) }));
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
      out.push(noData(id === 'bw' ? 'bw-migtime' : `bw-${id}`, claim[id], PAPER[id], IFFLAND_SPECS.bandwidth));
  } else {
    const lo = bws[0];
    const hi = bws[bws.length - 1];
    const t = (b: number) => sel(at(b), 'total_ms');
    const g = greater(t(lo), t(hi));
    // "most at the lowest": with three or more levels, the step into the lowest bandwidth is the largest
    const stepLo = bws.length >= 3 ? mm(t(bws[0])) - mm(t(bws[1])) : null;
    const stepHi = bws.length >= 3 ? mm(t(bws[bws.length - 2])) - mm(t(hi)) : null;
    const steepest = stepLo === null || stepHi === null || !Number.isFinite(stepLo) || !Number.isFinite(stepHi) ? null : stepLo > stepHi;
    const steps = bws.map((b) => `${b} Mbit/s ${fmt(mm(t(b)) / 1000)} s`).join(', ');
    const bySize = mems
      .map((mi) => `${mi} MiB @${hi}: ${fmt(mm(sel((c) => clean(c) && c.mbit === hi && c.memMiB === mi, 'total_ms')) / 1000)} s`)
      .join(', ');
    out.push({
      id: 'bw-migtime',
      claim: claim.bw,
      paper: PAPER.bw,
      measured: `${mem} MiB guest: ${steps}; ${bySize}`,
      verdict: g.holds === null ? 'inconclusive' : g.holds && steepest !== false ? 'holds' : 'does not hold',
      reason:
        g.holds === null
          ? 'too few migrations per bandwidth'
          : `${lo} vs ${hi} Mbit/s: one-sided Welch p ${fmt(g.test.p)}` +
            (steepest === null
              ? ''
              : `; step ${bws[1]} -> ${lo} Mbit/s ${fmt(stepLo! / 1000)} s ${steepest ? '>' : '<='} ` +
                `${hi} -> ${bws[bws.length - 2]} Mbit/s ${fmt(stepHi! / 1000)} s`),
      numbers: {
        ...Object.fromEntries(bws.map((b) => [`total_ms_${b}mbit`, mm(t(b))])),
        ...(steepest === null ? {} : { step_ms_lowest: stepLo, step_ms_highest: stepHi }),
      },
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

  out.push(...evaluateBlock(d));
  return out;
}

export type Mode = 'live' | 'block';

/** Block migration: the record carries the mirror's phases, or the treatment had a local disk under mode block. */
export function modeOf(o: Obs): Mode {
  if (o.m.block) return 'block';
  const vms = condition(o.run, o.m.treatment, 'vms');
  const i = Array.isArray(vms)
    ? Math.max(
        0,
        vms.findIndex((v: { name?: unknown } | null) => v?.name === o.m.vm),
      )
    : 0;
  const local = condition(o.run, o.m.treatment, `vms[${i}].disk.storage`) === 'local';
  return local && condition(o.run, o.m.treatment, 'migration.mode') === 'block' ? 'block' : 'live';
}

/** Mirror start -> the RAM migration's migrate command: the disk copy (bulk copy to READY, then the wait for the command). */
export function diskLeadMs(m: Migration): number | null {
  const b = m.block;
  if (!b) return null;
  const start = b.t_mirror_start ? Date.parse(b.t_mirror_start) : NaN;
  const cmd = m.t_cmd ? Date.parse(m.t_cmd) : NaN;
  if (Number.isFinite(start) && Number.isFinite(cmd) && cmd >= start) return cmd - start;
  return b.mirror_ms !== null && b.ready_to_migrate_ms !== null ? b.mirror_ms + b.ready_to_migrate_ms : null;
}

export interface Phases {
  /** The disk copy before the RAM migration (0 for live migration). */
  diskMs: number | null;
  preopMs: number | null;
  downtimeMs: number | null;
  postopMs: number | null;
  /** Migration time: the move's first command (mirror start for block) -> RAM migration completed. */
  totalMs: number | null;
}

/**
 * Iffländer's phases counted from the move's first command: for block
 * migration that is the mirror's start, so the disk copy is pre-operation
 * time (as their first snapshot is) and part of the migration time.
 */
export function phasesOf(m: Migration, mode: Mode): Phases {
  const disk = mode === 'live' ? 0 : diskLeadMs(m);
  const plus = (x: number | null) => (disk === null || x === null ? null : disk + x);
  return { diskMs: disk, preopMs: plus(m.preop_ms), downtimeMs: downtimeMs(m), postopMs: m.postop_ms, totalMs: plus(m.total_ms) };
}

/** Live vs block migration over bandwidth (spec iffl-block): migration time, the phases per mode, the disk's data. */
export function evaluateBlock(d: StudyData): Finding[] {
  const obs = obsWithRun(d, [IFFLAND_SPECS.block]).map((o) => {
    const mode = modeOf(o);
    return { mode, mbit: condOf(o).mbit, p: phasesOf(o.m, mode), m: o.m };
  });
  const has = (mode: Mode, b: number) => obs.some((x) => x.mode === mode && x.mbit === b);
  const bws = [...new Set(obs.map((x) => x.mbit).filter((b): b is number => b !== null && has('live', b) && has('block', b)))].sort(
    (a, b) => a - b,
  );
  const claim = {
    time: 'Block migration takes longer than live migration, the more so the lower the bandwidth',
    pre: "Block migration's pre-operation time (with the disk copy) exceeds live migration's",
    down: 'Live migration downtimes are below block migration downtimes',
    post: 'The migration mode has no effect on post-operation time',
    size: "Block migration's extra time grows with the disk (its data volume rises)",
  };
  if (bws.length === 0) {
    const none = (id: string, c: string, paper: string) =>
      obs.length
        ? notRun(id, c, paper, `spec '${IFFLAND_SPECS.block}' has no bandwidth with completed live and block migrations`)
        : noData(id, c, paper, IFFLAND_SPECS.block);
    return [
      none('block-migtime', claim.time, PAPER.block),
      none('block-preop', claim.pre, PAPER.blockPre),
      none('block-downtime', claim.down, PAPER.blockDown),
      none('block-postop', claim.post, PAPER.blockPost),
      none('block-disk-size', claim.size, PAPER.blockSize),
    ];
  }
  const sel = (mode: Mode, k: keyof Phases, b?: number) =>
    nums(obs.filter((x) => x.mode === mode && bws.includes(x.mbit as number) && (b === undefined || x.mbit === b)).map((x) => x.p[k]));
  const blocks = obs.filter((x) => x.mode === 'block').map((x) => x.m.block);
  const allocated = mm(nums(blocks.map((b) => b?.dst_allocated_bytes)));
  // the data the mirror has to move: what the guest wrote (zero blocks travel as cheap write-zeroes requests, and on a raw
  // image they still count as allocated at the destination); the destination's allocation where no content was checked
  const written = mm(nums(blocks.map((b) => b?.content?.bytes)));
  const dataBytes = Number.isFinite(written) ? written : allocated;
  const diskBytes = mm(nums(blocks.map((b) => b?.disk_bytes)));
  const switchover = mm(nums(blocks.map((b) => b?.switchover_ms)));
  const MiB = 2 ** 20;
  const out: Finding[] = [];

  // "block is longer than live" at each bandwidth; the least certain bandwidth decides
  const perBw = (k: keyof Phases) =>
    bws.map((b) => {
      const bl = sel('block', k, b);
      const li = sel('live', k, b);
      return { b, g: greater(bl, li), gap: mm(bl) - mm(li), block: mm(bl), live: mm(li) };
    });
  const longer = (rows: ReturnType<typeof perBw>, what: string): { verdict: Finding['verdict']; reason: string; test: Finding['test'] } => {
    const worst = rows.reduce((a, r) => ((r.g.test.p ?? 1) > (a.g.test.p ?? 1) ? r : a));
    const ps = rows.map((r) => `${r.b} Mbit/s p ${fmt(r.g.test.p)}`).join(', ');
    if (rows.some((r) => r.g.holds === null))
      return { verdict: 'inconclusive', reason: `fewer than 2 migrations of a mode at some bandwidth`, test: worst.g.test };
    const not = rows.find((r) => !(r.gap > 0));
    if (not)
      return { verdict: 'does not hold', reason: `${what}: live not shorter at ${not.b} Mbit/s; one-sided Welch ${ps}`, test: not.g.test };
    if (rows.some((r) => !r.g.holds))
      return {
        verdict: 'inconclusive',
        reason: `${what}: block longer on average, not significant everywhere; one-sided Welch ${ps}`,
        test: worst.g.test,
      };
    return { verdict: 'holds', reason: `${what}: one-sided Welch ${ps}`, test: worst.g.test };
  };

  const t = perBw('totalMs');
  let v = longer(t, 'block > live at every bandwidth');
  const lo = t[0];
  const hi = t[t.length - 1];
  if (v.verdict === 'holds' && t.length >= 2 && !(lo.gap > hi.gap))
    v = {
      ...v,
      verdict: 'does not hold',
      reason: `${v.reason}; but the gap does not grow as bandwidth falls (${fmt(hi.gap)} ms at ${hi.b}, ${fmt(lo.gap)} ms at ${lo.b} Mbit/s)`,
    };
  else if (v.verdict === 'holds' && t.length < 2) v = { ...v, reason: `${v.reason}; one bandwidth: the gap's growth is not tested` };
  const expected = (b: number) => (Number.isFinite(dataBytes) ? ((dataBytes * 8) / (b * 1e6)) * 1000 : NaN);
  out.push({
    id: 'block-migtime',
    claim: claim.time,
    paper: PAPER.block,
    measured:
      t.map((r) => `${r.b} Mbit/s: live ${fmt(r.live / 1000)} s, block ${fmt(r.block / 1000)} s (+${fmt(r.gap / 1000)} s)`).join('; ') +
      (Number.isFinite(dataBytes)
        ? `; ${Number.isFinite(written) ? "the guest's" : "the disk's"} ${fmt(dataBytes / MiB)} MiB of data take ` +
          `${t.map((r) => `${fmt(expected(r.b) / 1000)} s at ${r.b}`).join(', ')} Mbit/s`
        : ''),
    ...v,
    numbers: Object.fromEntries(
      t.flatMap((r) => [
        [`total_ms_live_${r.b}mbit`, r.live],
        [`total_ms_block_${r.b}mbit`, r.block],
        [`gap_ms_${r.b}mbit`, r.gap],
        [`disk_data_ms_${r.b}mbit`, Number.isFinite(dataBytes) ? expected(r.b) : null],
      ]),
    ),
  });

  const pre = perBw('preopMs');
  const phase = (mode: Mode, b: number) =>
    `${fmt(mm(sel(mode, 'preopMs', b)))} / ${fmt(mm(sel(mode, 'downtimeMs', b)))} / ${fmt(mm(sel(mode, 'postopMs', b)))}`;
  out.push({
    id: 'block-preop',
    claim: claim.pre,
    paper: PAPER.blockPre,
    measured:
      'pre-operation / downtime / post-operation, ms: ' +
      bws
        .map((b) => `${b} Mbit/s live ${phase('live', b)}, block ${phase('block', b)} (disk copy ${fmt(mm(sel('block', 'diskMs', b)))})`)
        .join('; '),
    ...longer(pre, 'pre-operation block > live at every bandwidth'),
    numbers: Object.fromEntries(
      bws.flatMap((b) =>
        (['live', 'block'] as const).flatMap((mode) => [
          [`preop_ms_${mode}_${b}mbit`, mm(sel(mode, 'preopMs', b))],
          [`downtime_ms_${mode}_${b}mbit`, mm(sel(mode, 'downtimeMs', b))],
          [`postop_ms_${mode}_${b}mbit`, mm(sel(mode, 'postopMs', b))],
          ...(mode === 'block' ? [[`disk_ms_${b}mbit`, mm(sel(mode, 'diskMs', b))]] : []),
        ]),
      ),
    ),
  });

  // downtime and post-operation: every bandwidth pooled (each mode ran at the same bandwidths)
  const dl = sel('live', 'downtimeMs');
  const db = sel('block', 'downtimeMs');
  const gd = greater(db, dl);
  const nd = noEffect(db, dl, Math.max(0.2 * mm(dl), 20));
  const below = (1 - mm(dl) / mm(db)) * 100;
  let dv: Pick<Finding, 'verdict' | 'reason' | 'test'>;
  if (gd.holds === null) dv = { verdict: 'inconclusive', reason: 'fewer than 2 downtimes of a mode', test: gd.test };
  else if (gd.holds) dv = { verdict: 'holds', reason: `block > live: one-sided Welch p ${fmt(gd.test.p)}`, test: gd.test };
  else if (nd.verdict === 'holds')
    dv = {
      verdict: 'differs',
      reason:
        `equal within +-${fmt(nd.margin)} ms (Welch p ${fmt(gd.test.p)}): here the write-blocking mirror has the disk in sync before ` +
        `the RAM migration starts, so the pause moves RAM only; the mirror's switchover (${fmt(switchover)} ms) follows the completed migration`,
      test: nd.test,
    };
  else dv = { verdict: 'does not hold', reason: `block not longer: one-sided Welch p ${fmt(gd.test.p)}; ${nd.test.detail}`, test: gd.test };
  out.push({
    id: 'block-downtime',
    claim: claim.down,
    paper: PAPER.blockDown,
    measured: `downtime live ${fmt(mm(dl))} ms, block ${fmt(mm(db))} ms (live ${fmt(below)} % below block; n ${dl.length} / ${db.length})`,
    ...dv,
    numbers: { downtime_ms_live: mm(dl), downtime_ms_block: mm(db), live_below_block_pct: below },
  });

  const pl = sel('live', 'postopMs');
  const pb = sel('block', 'postopMs');
  const np = noEffect(pb, pl, Math.max(0.2 * mm(pl), 20));
  out.push({
    id: 'block-postop',
    claim: claim.post,
    paper: PAPER.blockPost,
    measured: `post-operation live ${fmt(mm(pl))} ms, block ${fmt(mm(pb))} ms (n ${pl.length} / ${pb.length})`,
    verdict: np.verdict,
    reason: `equivalence margin +-${fmt(np.margin)} ms (20 % of the live mean, at least 20 ms)`,
    numbers: { postop_ms_live: mm(pl), postop_ms_block: mm(pb) },
    test: np.test,
  });

  const sized = Number.isFinite(allocated) && Number.isFinite(diskBytes);
  // the disk copy at each bandwidth against what the whole disk would take there
  const copies = bws.map((b) => ({ b, ms: mm(sel('block', 'diskMs', b)), whole: ((diskBytes * 8) / (b * 1e6)) * 1000 }));
  const cheapCopy = sized && copies.every((c) => Number.isFinite(c.ms) && c.ms < 0.5 * c.whole);
  const sparse = sized && allocated < 0.5 * diskBytes;
  out.push({
    id: 'block-disk-size',
    claim: claim.size,
    paper: PAPER.blockSize,
    measured: sized
      ? `disk ${fmt(diskBytes / MiB)} MiB, of which the destination holds ${fmt(allocated / MiB)} MiB after the mirror` +
        (Number.isFinite(written) ? `; the guest wrote ${fmt(written / MiB)} MiB` : '') +
        `; disk copy ${copies.map((c) => `${fmt(c.ms)} ms at ${c.b} Mbit/s (whole disk: ${fmt(c.whole)} ms)`).join(', ')}`
      : '-',
    verdict: sparse || cheapCopy ? 'differs' : 'not run',
    reason: sparse
      ? "disk size is not a factor here, and QEMU's mirror skips the unallocated blocks of the sparse image: the extra time " +
        'follows the data the guest wrote, not the disk size'
      : cheapCopy
        ? 'disk size is not a factor here, and the disk copy takes well under half of what the whole disk would: QEMU sends ' +
          "the fresh image's zero blocks as write-zeroes requests, so the extra time follows the data the guest wrote, not the disk size"
        : 'disk size is not a factor of the block spec' + (sized ? '' : ', and no mirror recorded the disk and its copied bytes'),
    numbers: {
      disk_mib: sized ? diskBytes / MiB : null,
      dst_allocated_mib: sized ? allocated / MiB : null,
      written_mib: Number.isFinite(written) ? written / MiB : null,
    },
    test: null,
  });
  return out;
}
