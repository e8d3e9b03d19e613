import { describe, expect, it } from 'vitest';
import { isSample } from '../harness/store/schema/index.ts';
import { fastSample, lineTime, SampleLineCache } from './load-sample-line.ts';

/** What the general path makes of a line: the sample JSON.parse gives when it is one, else undefined. */
function slow(line: string) {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  return isSample(v) ? v : undefined;
}

const plain = [
  '{"t":"2026-11-20T00:00:00.000Z","measurement":"power","tags":{"experiment":"x","host":"h1","treatment":"t1","rep":"0"},' +
    '"fields":{"watts":133.51744390777802}}',
  '{"t":"2026-11-20T00:00:00.000Z","measurement":"power","tags":{},"fields":{"watts":-0}}',
  '{"t":"2026-11-20T00:00:00.123456Z","measurement":"probe","tags":{"vm":"vm1"},' +
    '"fields":{"rtt_ms":1.5e-3,"lost":false,"seq":12,"note":"a,b}c","x":null,"ok":true}}',
  '{"t":"t","measurement":"m","tags":{"a":"1"},"fields":{"v":1,"v":2,"w":3}}',
  '{"t":"t","measurement":"m","tags":{"a":"1","a":"2"},"fields":{"":0}}',
  '{"t":"t","measurement":"m","tags":{"n":"1"},"fields":{"big":1e400,"small":-2.5E-7,"zero":0.0}}',
];
/** Lines the fast path must leave to JSON.parse (whatever that makes of them). */
const other = [
  '{"t":"2026","measurement":"m","tags":{"a":"}"},"fields":{"v":1}}',
  '{"t":"2026","measurement":"m","tags":{"a":"x\\"y"},"fields":{"v":1}}',
  '{"t":"2026","measurement":"m","tags":{"a":1},"fields":{"v":1}}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{}}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"__proto__":1}}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v":01}}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v":0x10}}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v":Infinity}}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v":1}} ',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v":1}}}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v":1},"x":2}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v":[1]}}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v":{"a":1}}}',
  '{"t":"","measurement":"m","tags":{"a":"1"},"fields":{"v":1}}',
  '{"t":"2026","measurement":"","tags":{"a":"1"},"fields":{"v":1}}',
  '{"t": "2026","measurement":"m","tags":{"a":"1"},"fields":{"v":1}}',
  '{"measurement":"m","t":"2026","tags":{"a":"1"},"fields":{"v":1}}',
  '{"t":"2026","measurement":"m","tags":{"a":"}","b":"c"},"fields":{"v":1}}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v":1}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v":"x\\u0041"}}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v":tru}}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v":-}}',
];

describe('fastSample', () => {
  it('gives what JSON.parse gives for plain lines: values, key order, own tags objects', () => {
    const cache = new SampleLineCache();
    // twice each, interleaved, so the cached tag sets and names are hit as well as missed
    for (const line of [...plain, ...[...plain].reverse(), ...plain]) {
      const s = fastSample(line, cache);
      expect(s, line).toBeDefined();
      expect(s).toStrictEqual(slow(line));
      expect(Object.keys(s!.fields)).toEqual(Object.keys(slow(line)!.fields));
      expect(Object.keys(s!.tags)).toEqual(Object.keys(slow(line)!.tags));
      expect(isSample(s)).toBe(true);
    }
    const a = fastSample(plain[0], cache)!,
      b = fastSample(plain[0], cache)!;
    expect(a.tags).not.toBe(b.tags);
    a.tags.host = 'changed';
    expect(fastSample(plain[0], cache)!.tags.host).toBe('h1');
  });

  it('leaves every other line to JSON.parse and the schema', () => {
    const cache = new SampleLineCache();
    for (const line of other) expect(fastSample(line, cache), line).toBeUndefined();
    // the lines the slow path accepts are still samples there (nothing is lost by declining)
    expect(other.filter((l) => slow(l) !== undefined).length).toBeGreaterThan(5);
  });

  it('keeps an own __proto__ tag as JSON.parse does', () => {
    const line = '{"t":"2026","measurement":"m","tags":{"__proto__":"x"},"fields":{"v":1}}';
    const s = fastSample(line, new SampleLineCache());
    expect(s).toStrictEqual(slow(line));
    expect(Object.getPrototypeOf(s!.tags)).toBe(Object.prototype);
  });
});

describe('lineTime', () => {
  it("reads t of a line in the harness's form, null otherwise", () => {
    expect(lineTime(plain[0])).toBe('2026-11-20T00:00:00.000Z');
    expect(lineTime('{"measurement":"m","t":"2026"}')).toBeNull();
    expect(lineTime('{"t":"20\\u00326","measurement":"m"}')).toBeNull();
    expect(lineTime('{"t":"2026')).toBeNull();
  });
});
