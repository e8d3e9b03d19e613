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

/**
 * Date.parse for the timestamps the harness writes most ("YYYY-MM-DDTHH:MM:SS.sssZ"),
 * computed without the general date parser; every other form (µs digits,
 * offsets, out-of-range fields, days past the 28th) goes to Date.parse, so
 * the result is always Date.parse's.
 */
export function parseIsoMs(s: string): number {
  const within = isoMinuteOffsetMs(s);
  if (within >= 0) {
    const minute = isoMinuteMs(s);
    // Date.UTC of the minute plus its seconds and ms is Date.UTC of all the fields: integers far below 2^53
    if (minute !== null) return minute + within;
  }
  return Date.parse(s);
}

/**
 * seconds * 1000 + ms of a time in the harness's form ("...:SS.sssZ", 24 characters), the part after its minute;
 * -1 for any other text.
 */
export function isoMinuteOffsetMs(s: string): number {
  if (s.length !== 24 || s.charCodeAt(23) !== 0x5a || s.charCodeAt(19) !== 0x2e) return -1;
  const sec = digits(s, 17, 2),
    ms = digits(s, 20, 3);
  return sec >= 0 && sec <= 59 && ms >= 0 ? sec * 1000 + ms : -1;
}

/** Date.UTC of the "YYYY-MM-DDTHH:MM:" that starts `s`, when parseIsoMs computes it itself (days up to the 28th), else null. */
export function isoMinuteMs(s: string): number | null {
  const y = digits(s, 0, 4),
    mo = digits(s, 5, 2),
    d = digits(s, 8, 2),
    h = digits(s, 11, 2),
    mi = digits(s, 14, 2);
  const ok =
    s.charCodeAt(4) === 0x2d &&
    s.charCodeAt(7) === 0x2d &&
    s.charCodeAt(10) === 0x54 &&
    s.charCodeAt(13) === 0x3a &&
    s.charCodeAt(16) === 0x3a &&
    y >= 1970 &&
    mo >= 1 &&
    mo <= 12 &&
    d >= 1 &&
    d <= 28 &&
    h >= 0 &&
    h <= 23 &&
    mi >= 0 &&
    mi <= 59;
  return ok ? Date.UTC(y, mo - 1, d, h, mi, 0, 0) : null;
}

/** The decimal number in s[from, from+n), -1 unless all n characters are digits. */
function digits(s: string, from: number, n: number): number {
  let v = 0;
  for (let i = from; i < from + n; i++) {
    const c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}
