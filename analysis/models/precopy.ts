/**
 * A pre-copy duration model that follows what QEMU does, next to mVM's
 * closed form (duration.ts), which it does not replace: mVM's formula is
 * the published reference.
 *
 * QEMU (migration/ram.c, migration.c) sends every non-zero page once (the
 * bulk pass; zero pages cost a header only), then repeats: when what is
 * left of the current pass drops to the threshold `bw x downtime_limit`, it
 * syncs the dirty bitmap; the exact pending is what was left plus what the
 * guest dirtied since the previous sync. Pending <= threshold: stop the
 * guest and send it (the downtime). Otherwise the pending is the next pass.
 * So a hot set larger than the threshold never converges, whatever
 * `bw > HPr` says (DESIGN.md: 6 MiB hot set, 60 Mbit/s, 300 ms never did).
 *
 * Dirtying follows mVM's hot/cold curve: distinct MiB dirtied in a window of
 * t seconds is HPr*t up to HPd, then HPs + CPr*(t - HPd), capped by the
 * memory in use. Units: MiB, MiB/s, s.
 */
import type { HotColdParams } from './duration.ts';

export interface PrecopyConditions {
  /** Migration throughput, MiB/s (link goodput, or max-bandwidth when lower). */
  bw: number;
  /** Non-zero guest memory the bulk pass sends, MiB (measured: not the configured size). */
  mu: number;
  /** Downtime limit, s. */
  D: number;
  /** Setup before the first page (s); QEMU's total-time includes it. */
  setup?: number;
  /** Give up (as QEMU would run forever) after this long, s. */
  maxTime?: number;
  /**
   * Time between two syncs that sends nothing (the bitmap sync itself, the
   * iteration that ends a short pass), s. It sets a floor under every pass:
   * a guest dirtying HPr keeps about HPr x syncS x bw/(bw - HPr) pending, so
   * it decides convergence when the hot set is near bw x D. Calibrate it
   * from runs; the default is a guess for TCG guests on this machine.
   */
  syncS?: number;
  /** Sending time between two checks of the pending estimate, s (QEMU: at most 50 ms). */
  iterationS?: number;
}

export interface PrecopyPass {
  /** MiB sent in this pass. */
  sent: number;
  /** Pass duration, s. */
  seconds: number;
}

export type PrecopyPrediction =
  | { converges: true; d: number; downtime: number; passes: PrecopyPass[]; transferred: number }
  | { converges: false; reason: string; passes: PrecopyPass[]; transferred: number };

/** Distinct MiB dirtied in a window of `t` s (mVM's hot/cold curve), capped at `cap`. */
export function dirtiedIn(p: HotColdParams, t: number, cap = Infinity): number {
  if (t <= 0) return 0;
  const HPr = p.HPd > 0 ? p.HPs / p.HPd : Infinity;
  const d = t <= p.HPd ? HPr * t : p.HPs + p.CPr * (t - p.HPd);
  return Math.min(d, cap);
}

/**
 * The stop rule alone: can pre-copy end at bandwidth `bw` with limit `D`?
 * In steady state a pass of length t leaves dirtied(t) pending; the
 * smallest pending QEMU can reach is about the hot set (plus the cold pages
 * of one pass), which must fit in bw x D.
 */
export function stopRuleConverges(p: HotColdParams, c: Omit<PrecopyConditions, 'maxTime'>): boolean {
  return simulatePrecopy(p, { ...c, maxTime: 3600 }).converges;
}

const MAX_PASSES = 10_000;
/** QEMU re-checks the pending estimate after each iteration of at most 50 ms of sending (MAX_WAIT in ram.c). */
export const ITERATION_S = 0.05;
export const DEFAULT_SYNC_S = 0.02;

export function simulatePrecopy(p: HotColdParams, c: PrecopyConditions): PrecopyPrediction {
  const passes: PrecopyPass[] = [];
  const maxTime = c.maxTime ?? 3600;
  if (!(c.bw > 0) || !(c.mu >= 0)) return { converges: false, reason: 'no bandwidth', passes, transferred: 0 };
  const thr = c.bw * c.D;
  // the estimate crosses the threshold somewhere inside an iteration: on average half an iteration below it
  const syncAt = Math.max(0, thr - (c.bw * (c.iterationS ?? ITERATION_S)) / 2);
  const syncS = c.syncS ?? DEFAULT_SYNC_S;
  const HPr = p.HPd > 0 ? p.HPs / p.HPd : Infinity;
  let t = c.setup ?? 0;
  let transferred = 0;
  // pass 1 is the bulk pass over the non-zero memory (its hot share is the hot set);
  // each later pass sends what was pending at the previous sync, hot and cold pages apart
  let hot = Math.min(p.HPs, c.mu);
  let cold = c.mu - hot;
  for (let k = 0; k < MAX_PASSES; k++) {
    const pass = hot + cold;
    const beforeSync = Math.max(0, pass - syncAt);
    const window = beforeSync / c.bw + (k === 0 ? 0 : syncS);
    // the unsent rest keeps the pass's mix; pages the guest re-dirtied among it are counted once
    const rest = pass - beforeSync;
    const restHot = pass > 0 ? (rest * hot) / pass : 0;
    const newHot = Math.min(p.HPs, HPr * window);
    const newCold = Math.max(0, dirtiedIn(p, window, c.mu) - newHot);
    const nextHot = restHot + newHot - (p.HPs > 0 ? (restHot * newHot) / p.HPs : 0);
    const nextCold = rest - restHot + newCold;
    const pending = nextHot + nextCold;
    t += window;
    transferred += beforeSync;
    if (pending <= thr) {
      const downtime = pending / c.bw;
      transferred += pending;
      t += downtime;
      passes.push({ sent: beforeSync + pending, seconds: window + downtime });
      return { converges: true, d: t, downtime, passes, transferred };
    }
    passes.push({ sent: beforeSync, seconds: window });
    // the next pass is an increasing function of this one: once a pass does not shrink, none will
    if (t > maxTime || (k > 0 && pending >= pass - 1e-12)) {
      const why = t > maxTime ? `not within ${maxTime} s` : 'passes stopped shrinking';
      return {
        converges: false,
        reason: `pending ${pending.toFixed(1)} MiB never fell to bw x downtime limit = ${thr.toFixed(1)} MiB (${why})`,
        passes,
        transferred,
      };
    }
    hot = nextHot;
    cold = nextCold;
  }
  return { converges: false, reason: `no convergence after ${MAX_PASSES} passes`, passes, transferred };
}
