/** Nelder-Mead simplex minimisation for small nonlinear least-squares fits. */
export interface MinimizeResult {
  x: number[];
  value: number;
  iterations: number;
}

export function nelderMead(
  f: (x: number[]) => number,
  x0: number[],
  opts: { step?: number[]; maxIter?: number; tol?: number } = {},
): MinimizeResult {
  const n = x0.length;
  const maxIter = opts.maxIter ?? 2000 * n;
  const tol = opts.tol ?? 1e-10;
  const step = opts.step ?? x0.map((v) => (v !== 0 ? 0.1 * Math.abs(v) : 0.1));
  let simplex: { x: number[]; v: number }[] = [{ x: [...x0], v: f(x0) }];
  for (let i = 0; i < n; i++) {
    const x = [...x0];
    x[i] += step[i];
    simplex.push({ x, v: f(x) });
  }
  let it = 0;
  for (; it < maxIter; it++) {
    simplex.sort((a, b) => a.v - b.v);
    const best = simplex[0],
      worst = simplex[n];
    if (Math.abs(worst.v - best.v) <= tol * (Math.abs(best.v) + tol)) break;
    const c = new Array(n).fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) c[j] += simplex[i].x[j] / n;
    const at = (t: number) => c.map((cj, j) => cj + t * (worst.x[j] - cj));
    const xr = at(-1),
      vr = f(xr);
    if (vr < best.v) {
      const xe = at(-2),
        ve = f(xe);
      simplex[n] = ve < vr ? { x: xe, v: ve } : { x: xr, v: vr };
    } else if (vr < simplex[n - 1].v) {
      simplex[n] = { x: xr, v: vr };
    } else {
      const xc = vr < worst.v ? at(-0.5) : at(0.5);
      const vc = f(xc);
      if (vc < Math.min(vr, worst.v)) simplex[n] = { x: xc, v: vc };
      else {
        simplex = simplex.map((p, i) =>
          i === 0
            ? p
            : (() => {
                const x = p.x.map((xj, j) => best.x[j] + 0.5 * (xj - best.x[j]));
                return { x, v: f(x) };
              })(),
        );
      }
    }
  }
  simplex.sort((a, b) => a.v - b.v);
  return { x: simplex[0].x, value: simplex[0].v, iterations: it };
}
