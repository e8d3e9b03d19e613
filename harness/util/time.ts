/** Clock helpers shared by control and derivation code. */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** ISO UTC from epoch ms; a fractional part (QMP timestamps, probe send times) is kept as µs digits. */
export function iso(ms: number | null | undefined): string | null {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return null;
  const whole = Math.floor(ms);
  const us = Math.round((ms - whole) * 1000);
  const base = new Date(whole).toISOString();
  return us > 0 ? `${base.slice(0, -1)}${String(Math.min(us, 999)).padStart(3, '0')}Z` : base;
}
