/**
 * Seeded pseudo-random numbers (mulberry32), so bootstrap intervals and
 * synthetic data are reproducible run to run.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Standard normal (Box-Muller). */
  normal(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** Fills out with integers in [0, n): the same draws as out.length calls of int(n), in a loop without calls (bootstrap). */
  ints(out: Int32Array, n: number): void;
}

export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare: number | null = null;
  return {
    next,
    int: (n) => Math.floor(next() * n),
    ints(out, n) {
      // next() written out, the state in a local (a closure variable holding a uint32 is boxed at each store):
      // 20 M draws in a campaign's energy bootstrap
      let s = a;
      for (let i = 0; i < out.length; i++) {
        s = (s + 0x6d2b79f5) >>> 0;
        let t = s;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        out[i] = Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
      }
      a = s;
    },
    normal() {
      if (spare !== null) {
        const s = spare;
        spare = null;
        return s;
      }
      let u = 0;
      while (u === 0) u = next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
  };
}
