/**
 * Two-factor views (issue 15): for every pair of factors varied in a run
 * (two or more levels each), the mean response of completed migrations in
 * each cell A x B, for a heat map or a line family.
 */
import { levelsOf, observations, toLevel, type Level, type RunDir } from './rundir.ts';

export const TWO_FACTOR_RESPONSES = ['total_ms', 'downtime_observed_ms'] as const;
export type TwoFactorResponse = (typeof TWO_FACTOR_RESPONSES)[number];

export interface TwoFactorCell {
  a: string;
  b: string;
  /** Mean over completed, non-partial migrations with the response; null when none. */
  mean: number | null;
  n: number;
}

export interface TwoFactorView {
  a: string;
  b: string;
  response: TwoFactorResponse;
  aLevels: string[];
  bLevels: string[];
  cells: TwoFactorCell[];
}

/**
 * A level as a short label: objects (a whole workload given as a factor)
 * become their scalar entries as k=v, so a heat map axis stays readable.
 */
export function levelLabel(l: Level): string {
  if (typeof l === 'string' && l.startsWith('{')) {
    try {
      const o = JSON.parse(l) as Record<string, unknown>;
      return Object.entries(o)
        .filter(([, v]) => typeof v !== 'object' || v === null)
        .map(([k, v]) => (k === 'kind' ? String(v) : `${k}=${String(v)}`))
        .join(' ');
    } catch {
      return l;
    }
  }
  return String(l);
}

export function twoFactorViews(run: RunDir, responses: readonly TwoFactorResponse[] = TWO_FACTOR_RESPONSES): TwoFactorView[] {
  const factors = Object.entries(run.manifest.factors)
    .filter(([, levels]) => levels.length >= 2)
    .map(([name, levels]) => ({ name, levels: levels.map((l) => levelLabel(toLevel(l))) }));
  if (factors.length < 2) return [];
  const levels = levelsOf(run);
  const obs = observations(run.migrations);
  const out: TwoFactorView[] = [];
  for (let i = 0; i < factors.length; i++)
    for (let j = i + 1; j < factors.length; j++) {
      const A = factors[i],
        B = factors[j];
      for (const response of responses) {
        const acc = new Map<string, { s: number; n: number }>();
        // a treatment's cell key made once, not per migration (10,560 migrations in a Salfner-scale campaign)
        const keys = new Map<string, string | null>();
        for (const m of obs) {
          const v = m[response];
          if (typeof v !== 'number') continue;
          let k = keys.get(m.treatment);
          if (k === undefined) {
            const lv = levels.get(m.treatment);
            k =
              !lv || lv[A.name] === undefined || lv[B.name] === undefined
                ? null
                : JSON.stringify([levelLabel(lv[A.name]), levelLabel(lv[B.name])]);
            keys.set(m.treatment, k);
          }
          if (k === null) continue;
          let c = acc.get(k);
          if (!c) acc.set(k, (c = { s: 0, n: 0 }));
          c.s += v;
          c.n++;
        }
        const cells: TwoFactorCell[] = [];
        for (const a of A.levels)
          for (const b of B.levels) {
            const c = acc.get(JSON.stringify([a, b]));
            cells.push({ a, b, mean: c ? c.s / c.n : null, n: c?.n ?? 0 });
          }
        out.push({ a: A.name, b: B.name, response, aLevels: A.levels, bLevels: B.levels, cells });
      }
    }
  return out;
}
