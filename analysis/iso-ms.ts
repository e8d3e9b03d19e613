/**
 * parseIsoMs for a stream of timestamps in time order (a power file's
 * million readings): a time in the harness's form ("YYYY-MM-DDTHH:MM:SS.sssZ")
 * that shares its minute with the one before is computed from that minute's
 * epoch ms plus its seconds and milliseconds, without parsing the date again.
 * The same number as parseIsoMs (Date.UTC of the same fields is the minute's
 * Date.UTC plus seconds * 1000 plus ms, exactly: integers far below 2^53);
 * any other text goes to parseIsoMs itself.
 */
import { isoMinuteMs, isoMinuteOffsetMs, parseIsoMs } from '../harness/util/time.ts';

export class IsoMsStream {
  private minute = '';
  private minuteMs = 0;

  ms(s: string): number {
    const within = isoMinuteOffsetMs(s);
    if (within < 0) return parseIsoMs(s);
    const minute = s.slice(0, 17);
    if (minute !== this.minute) {
      const at = isoMinuteMs(minute);
      if (at === null) return parseIsoMs(s);
      this.minute = minute;
      this.minuteMs = at;
    }
    return this.minuteMs + within;
  }
}
