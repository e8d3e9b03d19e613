/**
 * Effects in the main-effects table tested as in a two-way ANOVA (issue 15):
 * each factor's main effect and each pair's interaction against the pure
 * error, the variance of repetitions within a treatment. The interaction of
 * A and B is what the cell means of A x B add to the best additive fit
 * (row + column effects, weighted least squares, so unbalanced cells after
 * failures are handled); for 2 x 2 levels it is also given as the
 * difference of differences with a 95 % t interval. With further factors
 * varied, A x B cells pool over them: exact for a balanced full factorial.
 */
import { incompleteBeta, tQuantile } from './stats/tdist.ts';

/** P(F >= f) for F ~ F(d1, d2). */
export function fSurvival(f: number, d1: number, d2: number): number {
  if (!(d1 > 0 && d2 > 0) || Number.isNaN(f)) return NaN;
  if (f <= 0) return 1;
  if (f === Infinity) return 0;
  return incompleteBeta(d2 / (d2 + d1 * f), d2 / 2, d1 / 2);
}

/** Sum of squares and degrees of freedom of the repetitions around their treatment means. */
export interface PureError {
  ss: number;
  df: number;
}

export function pureError(byTreatment: ReadonlyMap<string, readonly number[]>): PureError {
  let ss = 0,
    df = 0;
  for (const xs of byTreatment.values()) {
    if (xs.length < 2) continue;
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    for (const x of xs) ss += (x - m) ** 2;
    df += xs.length - 1;
  }
  return { ss, df };
}

export interface FTest {
  f: number;
  df1: number;
  df2: number;
  p: number;
}

/** F test of an effect's sum of squares against the pure error; null when either has no degrees of freedom. */
export function fTest(ss: number, df1: number, err: PureError): FTest | null {
  if (df1 < 1 || err.df < 1) return null;
  const ms = ss / df1,
    mse = err.ss / err.df;
  // repetitions that never vary: any effect is infinitely significant, none is undefined
  const f = mse > 0 ? ms / mse : ms > 0 ? Infinity : NaN;
  if (Number.isNaN(f)) return null;
  return { f, df1, df2: err.df, p: fSurvival(f, df1, err.df) };
}

/** Main effect of one factor: the spread of its level means, weighted by their counts. */
export function mainEffectTest(levels: readonly { n: number; mean: number }[], err: PureError): FTest | null {
  const n = levels.reduce((s, l) => s + l.n, 0);
  if (n === 0) return null;
  const grand = levels.reduce((s, l) => s + l.n * l.mean, 0) / n;
  const ss = levels.reduce((s, l) => s + l.n * (l.mean - grand) ** 2, 0);
  return fTest(ss, levels.length - 1, err);
}

export interface InteractionCell {
  a: string;
  b: string;
  n: number;
  /** null when the cell has no observation. */
  mean: number | null;
}

export interface Interaction {
  a: string;
  b: string;
  aLevels: string[];
  bLevels: string[];
  cells: InteractionCell[];
  /** 2 x 2 only: (m[a2,b2] - m[a2,b1]) - (m[a1,b2] - m[a1,b1]) and its 95 % t interval. */
  contrast: { value: number; low: number; high: number } | null;
  /** Largest |cell mean - additive fit|: how far the cells are from "no interaction", in the response's unit. */
  maxDeviation: number | null;
  /** Sum of squares of the interaction, (a-1)(b-1) degrees of freedom. */
  ss: number | null;
  test: FTest | null;
  /** Why there is no test (empty cells that leave nothing to test, no repetitions), or that empty cells were left out. */
  note: string | null;
}

/** The weighted least-squares additive fit mu + alpha_i + beta_j of cell means (Gauss-Seidel on the normal equations). */
export function additiveFit(n: readonly number[][], m: readonly number[][]): number[][] {
  const A = n.length,
    B = n[0]?.length ?? 0;
  const rowN = n.map((r) => r.reduce((s, x) => s + x, 0));
  const colN = Array.from({ length: B }, (_, j) => n.reduce((s, r) => s + r[j], 0));
  const total = rowN.reduce((s, x) => s + x, 0);
  let mu = 0;
  for (let i = 0; i < A; i++) for (let j = 0; j < B; j++) if (n[i][j]) mu += (n[i][j] * m[i][j]) / total;
  const alpha = new Array<number>(A).fill(0),
    beta = new Array<number>(B).fill(0);
  const scale = Math.max(1, ...m.flat().map((x) => (Number.isFinite(x) ? Math.abs(x) : 0)));
  for (let it = 0; it < 10_000; it++) {
    let change = 0;
    for (let i = 0; i < A; i++) {
      let s = 0;
      for (let j = 0; j < B; j++) if (n[i][j]) s += n[i][j] * (m[i][j] - mu - beta[j]);
      const v = rowN[i] ? s / rowN[i] : 0;
      change = Math.max(change, Math.abs(v - alpha[i]));
      alpha[i] = v;
    }
    for (let j = 0; j < B; j++) {
      let s = 0;
      for (let i = 0; i < A; i++) if (n[i][j]) s += n[i][j] * (m[i][j] - mu - alpha[i]);
      const v = colN[j] ? s / colN[j] : 0;
      change = Math.max(change, Math.abs(v - beta[j]));
      beta[j] = v;
    }
    if (change <= 1e-13 * scale) break;
  }
  return alpha.map((a) => beta.map((b) => mu + a + b));
}

/** The interaction of two factors from observations labelled with their levels. */
export function interaction(
  a: string,
  b: string,
  aLevels: readonly string[],
  bLevels: readonly string[],
  obs: readonly { a: string; b: string; y: number }[],
  err: PureError,
): Interaction {
  const sums = aLevels.map(() => bLevels.map(() => ({ n: 0, s: 0 })));
  for (const o of obs) {
    const i = aLevels.indexOf(o.a),
      j = bLevels.indexOf(o.b);
    if (i < 0 || j < 0) continue;
    sums[i][j].n++;
    sums[i][j].s += o.y;
  }
  const n = sums.map((r) => r.map((c) => c.n));
  const m = sums.map((r) => r.map((c) => (c.n ? c.s / c.n : NaN)));
  const cells = aLevels.flatMap((la, i) => bLevels.map((lb, j) => ({ a: la, b: lb, n: n[i][j], mean: n[i][j] ? m[i][j] : null })));
  const base = { a, b, aLevels: [...aLevels], bLevels: [...bLevels], cells };
  const empty = cells.filter((c) => c.n === 0).length;
  // with empty cells (e.g. every migration of a treatment cancelled) the test runs over the filled ones:
  // (filled - (rows + columns - 1)) degrees of freedom, if the filled cells connect every level used
  const rows = aLevels.map((_, i) => i).filter((i) => n[i].some((k) => k > 0));
  const cols = bLevels.map((_, j) => j).filter((j) => n.some((r) => r[j] > 0));
  const filled = cells.length - empty;
  const df1 = filled - (rows.length + cols.length - 1);
  const none = (note: string) => ({ ...base, contrast: null, maxDeviation: null, ss: null, test: null, note });
  if (empty && !connected(n)) return none(`${empty} empty cell(s) of ${cells.length} split the levels: no interaction to test`);
  if (df1 < 1) return none(`${empty} empty cell(s) of ${cells.length}: no interaction left to test`);
  const fit = additiveFit(n, m);
  let ss = 0,
    maxDeviation = 0;
  for (let i = 0; i < aLevels.length; i++)
    for (let j = 0; j < bLevels.length; j++) {
      if (!n[i][j]) continue;
      const d = m[i][j] - fit[i][j];
      ss += n[i][j] * d * d;
      maxDeviation = Math.max(maxDeviation, Math.abs(d));
    }
  const test = fTest(ss, df1, err);
  let contrast: Interaction['contrast'] = null;
  if (aLevels.length === 2 && bLevels.length === 2 && !empty) {
    const value = m[1][1] - m[1][0] - (m[0][1] - m[0][0]);
    const half = err.df >= 1 ? tQuantile(0.975, err.df) * Math.sqrt((err.ss / err.df) * n.flat().reduce((s, k) => s + 1 / k, 0)) : NaN;
    contrast = { value, low: value - half, high: value + half };
  }
  const note = !test
    ? err.df < 1
      ? 'no repetitions: no variance within treatments to test against'
      : 'nothing to test'
    : empty
      ? `${empty} empty cell(s) of ${cells.length}: tested over the others`
      : null;
  return { ...base, contrast, maxDeviation, ss, test, note };
}

/** Do the filled cells link every row and column that has one (so an additive fit is identified)? */
function connected(n: readonly number[][]): boolean {
  const A = n.length,
    B = n[0]?.length ?? 0;
  // nodes: rows 0..A-1, columns A..A+B-1; edges: filled cells
  const parent = Array.from({ length: A + B }, (_, i) => i);
  const find = (x: number): number => (parent[x] === x ? x : (parent[x] = find(parent[x])));
  const used = new Set<number>();
  for (let i = 0; i < A; i++)
    for (let j = 0; j < B; j++)
      if (n[i][j] > 0) {
        used.add(i).add(A + j);
        parent[find(i)] = find(A + j);
      }
  return new Set([...used].map(find)).size <= 1;
}
