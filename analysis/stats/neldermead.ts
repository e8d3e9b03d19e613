/** Nelder-Mead simplex minimisation for small nonlinear least-squares fits. */
export interface MinimizeResult {
  x: number[];
  value: number;
  iterations: number;
}

/**
 * Fits call this millions of times per analysis (a duration fit per workload
 * and held-out rate, 27 starts each), so an iteration makes no arrays: the
 * centroid is reused and a trial point takes a spare array, which becomes a
 * vertex when accepted (the replaced vertex's array is the next spare). The
 * arithmetic and its order are those of the textbook form (reflection -1,
 * expansion -2, contraction +-0.5, shrink 0.5 towards the best vertex).
 */
export function nelderMead(
  f: (x: number[]) => number,
  x0: number[],
  opts: { step?: number[]; maxIter?: number; tol?: number } = {},
): MinimizeResult {
  const n = x0.length;
  const maxIter = opts.maxIter ?? 2000 * n;
  const tol = opts.tol ?? 1e-10;
  const step = opts.step ?? x0.map((v) => (v !== 0 ? 0.1 * Math.abs(v) : 0.1));
  const simplex: { x: number[]; v: number }[] = [{ x: [...x0], v: f(x0) }];
  for (let i = 0; i < n; i++) {
    const x = [...x0];
    x[i] += step[i];
    simplex.push({ x, v: f(x) });
  }
  const c: number[] = new Array<number>(n).fill(0);
  // arrays for trial points not (yet) in the simplex
  const spare: number[][] = [new Array<number>(n).fill(0), new Array<number>(n).fill(0), new Array<number>(n).fill(0)];
  const at = (t: number, worst: number[], into: number[]): number[] => {
    for (let j = 0; j < n; j++) into[j] = c[j] + t * (worst[j] - c[j]);
    return into;
  };
  /** Puts x (a spare) in the worst vertex's place; that vertex's array becomes a spare. */
  const replaceWorst = (x: number[], v: number): void => {
    const old = simplex[n].x;
    spare[spare.indexOf(x)] = old;
    simplex[n].x = x;
    simplex[n].v = v;
  };
  let it = 0;
  for (; it < maxIter; it++) {
    sortByValue(simplex);
    const best = simplex[0],
      worst = simplex[n];
    if (Math.abs(worst.v - best.v) <= tol * (Math.abs(best.v) + tol)) break;
    c.fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) c[j] += simplex[i].x[j] / n;
    const xr = at(-1, worst.x, spare[0]),
      vr = f(xr);
    if (vr < best.v) {
      const xe = at(-2, worst.x, spare[1]),
        ve = f(xe);
      if (ve < vr) replaceWorst(xe, ve);
      else replaceWorst(xr, vr);
    } else if (vr < simplex[n - 1].v) {
      replaceWorst(xr, vr);
    } else {
      const xc = vr < worst.v ? at(-0.5, worst.x, spare[2]) : at(0.5, worst.x, spare[2]);
      const vc = f(xc);
      if (vc < Math.min(vr, worst.v)) replaceWorst(xc, vc);
      else
        for (let i = 1; i <= n; i++) {
          const p = simplex[i];
          for (let j = 0; j < n; j++) p.x[j] = best.x[j] + 0.5 * (p.x[j] - best.x[j]);
          p.v = f(p.x);
        }
    }
  }
  sortByValue(simplex);
  return { x: simplex[0].x, value: simplex[0].v, iterations: it };
}

/** a.v - b.v as Array.prototype.sort uses a comparator's result (NaN counts as equal). */
function order(a: { v: number }, b: { v: number }): number {
  const d = a.v - b.v;
  return d !== d ? 0 : d;
}

/**
 * simplex.sort((a, b) => a.v - b.v) without the builtin's temporary array
 * per call (it was most of an iteration's garbage): V8's TimSort on fewer
 * than 64 elements step by step (array-sort.tq: the first run, reversed when
 * descending, then binary insertion), so the order is the same also for
 * NaN values and ties.
 */
export function sortByValue(a: { x: number[]; v: number }[]): void {
  const high = a.length;
  if (high < 2) return;
  let run = 2;
  const descending = order(a[1], a[0]) < 0;
  for (let i = 2; i < high; i++) {
    const o = order(a[i], a[i - 1]);
    if (descending ? o >= 0 : o < 0) break;
    run++;
  }
  if (descending)
    for (let i = 0, j = run - 1; i < j; i++, j--) {
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  for (let start = run; start < high; start++) {
    const pivot = a[start];
    let left = 0,
      right = start;
    while (left < right) {
      const mid = left + ((right - left) >> 1);
      if (order(pivot, a[mid]) < 0) right = mid;
      else left = mid + 1;
    }
    for (let p = start; p > left; p--) a[p] = a[p - 1];
    a[left] = pivot;
  }
}
