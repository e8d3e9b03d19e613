/**
 * parseIsoMs for a stream of timestamps in time order (a power file's
 * million readings): a time in the harness's form ("YYYY-MM-DDTHH:MM:SS.sssZ")
 * that shares its minute with the one before is computed from that minute's
 * epoch ms plus its seconds and milliseconds, without parsing the date again.
 * The same number as parseIsoMs (Date.UTC of the same fields is the minute's
 * Date.UTC plus seconds * 1000 plus ms, exactly: integers far below 2^53);
 * any other text goes to parseIsoMs itself.
 */
import { parseIsoMs } from '../harness/util/time.ts';

export class IsoMsStream {
  private minute = '';
  private minuteMs = 0;

  ms(s: string): number {
    if (s.length !== 24 || s.charCodeAt(23) !== 0x5a || s.charCodeAt(19) !== 0x2e) return parseIsoMs(s);
    const sec = digits(s, 17, 2),
      ms = digits(s, 20, 3);
    if (sec < 0 || sec > 59 || ms < 0) return parseIsoMs(s);
    const minute = s.slice(0, 17);
    if (minute !== this.minute) {
      const at = minuteMs(minute);
      if (at === null) return parseIsoMs(s);
      this.minute = minute;
      this.minuteMs = at;
    }
    return this.minuteMs + sec * 1000 + ms;
  }
}

/** Date.UTC of "YYYY-MM-DDTHH:MM:" when parseIsoMs takes its fast path for times in that minute (same checks), else null. */
function minuteMs(s: string): number | null {
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
