import { mkdtempSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { InfluxDiskBuffer } from './influx-buffer.ts';
import { isoToMicros, parseInfluxUrl, sampleToPoint } from './influx.ts';

const dir = mkdtempSync('/tmp/mb-p-ibuf-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('influx mapping', () => {
  it('keeps tags as tags, drops null fields, uses explicit microsecond timestamps', () => {
    const p = sampleToPoint({
      t: '2026-11-22T00:00:01.234Z',
      measurement: 'power',
      tags: { host: 'h1' },
      fields: { watts: null, reason: 'timeout', latency_ms: 3.5 },
    });
    expect(p).toEqual({
      measurement: 'power',
      tags: { host: 'h1' },
      fields: { reason: 'timeout', latency_ms: 3.5 },
      timestamp: String(Date.parse('2026-11-22T00:00:01.234Z') * 1000),
    });
    expect(isoToMicros('2026-11-22T00:00:01.234567Z')).toBe(String(Date.parse('2026-11-22T00:00:01.234Z') * 1000 + 567));
  });
  it('parses --influx URLs with a database and a clear error otherwise', () => {
    expect(parseInfluxUrl('http://127.0.0.1:8087/runs')).toMatchObject({ host: '127.0.0.1', port: 8087, database: 'runs' });
    expect(parseInfluxUrl('http://db').database).toBe('migbench');
    expect(() => parseInfluxUrl('db:8086')).toThrow(/must start with http/);
  });
});

describe('InfluxDiskBuffer', () => {
  it('keeps batches in order across instances and removes acknowledged ones', () => {
    const b = new InfluxDiskBuffer(dir);
    const s = (i: number) => ({ t: new Date(i).toISOString(), measurement: 'm', tags: {}, fields: { i } });
    b.append([s(1), s(2)]);
    b.append([s(3)]);
    const again = new InfluxDiskBuffer(dir);
    again.append([s(4)]);
    const segs = again.segments();
    expect(segs.map((g) => again.read(g).map((x) => x.fields.i))).toEqual([[1, 2], [3], [4]]);
    again.remove(segs[0]);
    expect(again.pendingPoints()).toBe(2);
  });
});
