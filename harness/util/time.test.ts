import { describe, expect, it } from 'vitest';
import { seededRng } from './rng.ts';
import { iso, parseIsoMs } from './time.ts';

describe('parseIsoMs', () => {
  it('equals Date.parse on the harness format, other forms and garbage', () => {
    const rng = seededRng(7);
    const cases: string[] = [];
    for (let i = 0; i < 20_000; i++) cases.push(new Date(rng.int(4_102_444_800_000)).toISOString());
    for (let i = 0; i < 2_000; i++) cases.push(iso(rng.int(4_102_444_800_000) + rng.int(1000) / 1000)!);
    cases.push(
      '2026-02-29T00:00:00.000Z',
      '2024-02-29T23:59:59.999Z',
      '2026-04-31T00:00:00.000Z',
      '2026-13-01T00:00:00.000Z',
      '2026-00-01T00:00:00.000Z',
      '2026-11-00T00:00:00.000Z',
      '2026-11-20T24:00:00.000Z',
      '2026-11-20T23:60:00.000Z',
      '2026-11-20T23:59:60.000Z',
      '2026-11-20T00:00:00.000+01:00',
      '2026-11-20T00:00:00.000123Z',
      '2026-11-20T00:00:00Z',
      '2026-11-20 00:00:00.000Z',
      '0099-11-20T00:00:00.000Z',
      '1969-12-31T23:59:59.999Z',
      '+02026-11-20T00:00:00.00Z',
      '2026-1a-20T00:00:00.000Z',
      '2026-11-20T0-:00:00.000Z',
      '2026-11-20T00:00:00.0-0Z',
      'not a time at all, 24 c',
      '',
    );
    for (const s of cases) expect(Object.is(parseIsoMs(s), Date.parse(s)), s).toBe(true);
  });
});
