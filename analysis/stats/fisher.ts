/**
 * Fisher's exact test on a 2x2 table of failures: does group 2 (the
 * candidate) fail more often than group 1 (the baseline)? One-sided,
 * hypergeometric tail, margins fixed.
 */

function logFactorial(n: number): number {
  let s = 0;
  for (let k = 2; k <= n; k++) s += Math.log(k);
  return s;
}

function logChoose(n: number, k: number): number {
  return logFactorial(n) - logFactorial(k) - logFactorial(n - k);
}

/** P(X = x) for X ~ Hypergeometric(total N, K successes, n draws). */
function hyper(x: number, N: number, K: number, n: number): number {
  if (x < Math.max(0, n - (N - K)) || x > Math.min(K, n)) return 0;
  return Math.exp(logChoose(K, x) + logChoose(N - K, n - x) - logChoose(N, n));
}

export interface FisherResult {
  /** One-sided p of "group 2 has a higher failure rate than group 1". */
  p: number;
  /** Smallest p reachable with these margins (all failures in group 2 as far as possible). */
  minP: number;
}

/** f1 failures of n1 in group 1, f2 of n2 in group 2. */
export function fisherGreater(f1: number, n1: number, f2: number, n2: number): FisherResult {
  const N = n1 + n2,
    K = f1 + f2;
  if (n1 === 0 || n2 === 0 || K === 0 || K === N) return { p: 1, minP: 1 };
  let p = 0;
  for (let x = f2; x <= Math.min(K, n2); x++) p += hyper(x, N, K, n2);
  const minP = hyper(Math.min(K, n2), N, K, n2);
  return { p: Math.min(1, p), minP };
}
