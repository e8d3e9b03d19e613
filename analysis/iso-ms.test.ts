import { describe, expect, it } from 'vitest';
import { parseIsoMs } from '../harness/util/time.ts';
import { seededRng } from '../harness/util/rng.ts';
import { IsoMsStream } from './iso-ms.ts';

/** Object.is, so NaN equals NaN and 0 differs from -0. */
function check(stream: IsoMsStream, s: string): void {
  const got = stream.ms(s);
  const want = parseIsoMs(s);
  if (!Object.is(got, want)) expect(got, s).toBe(want);
}

describe('IsoMsStream', () => {
  it('gives parseIsoMs for times in order, across minutes, hours, days, months and years', () => {
    const stream = new IsoMsStream();
    let n = 0;
    for (let t = Date.UTC(2026, 11, 31, 23, 58, 0); t < Date.UTC(2027, 0, 1, 0, 2, 0); t += 137) {
      check(stream, new Date(t).toISOString());
      n++;
    }
    for (const start of [Date.UTC(2026, 1, 28, 23, 59, 50), Date.UTC(1970, 0, 1, 0, 0, 0), Date.UTC(2024, 1, 29, 0, 0, 0)])
      for (let t = start; t < start + 20_000; t += 250) check(stream, new Date(t).toISOString());
    expect(n).toBeGreaterThan(1000);
  });

  it('gives parseIsoMs for damaged and unusual times (random edits of good ones)', () => {
    const rng = seededRng(41);
    const stream = new IsoMsStream();
    const chars = '0123456789-:.TZ+ x';
    let differs = 0;
    for (let i = 0; i < 40_000; i++) {
      const good = new Date(Date.UTC(2026, 10, 20, 0, 0, 0) + rng.int(4 * 3600_000)).toISOString();
      check(stream, good);
      let bad = good;
      for (let k = 1 + rng.int(2); k > 0; k--) {
        const at = rng.int(bad.length);
        const op = rng.int(3);
        const c = chars[rng.int(chars.length)];
        bad = bad.slice(0, at) + (op === 0 ? '' : c) + bad.slice(op === 2 ? at : at + 1);
      }
      if (bad !== good) differs++;
      check(stream, bad);
    }
    for (const s of [
      '2026-11-20T00:00:60.000Z',
      '2026-11-29T00:00:00.000Z',
      '1969-12-31T23:59:59.999Z',
      '2026-13-01T00:00:00.000Z',
      '',
      'x',
    ])
      check(stream, s);
    expect(differs).toBeGreaterThan(30_000);
  });
});
