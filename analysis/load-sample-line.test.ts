import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { isSample } from '../harness/store/schema/index.ts';
import { seededRng } from '../harness/util/rng.ts';
import { fastNumber, fastSample, lineTime, numberSample, SampleLineCache } from './load-sample-line.ts';

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
  // raw control characters (the writer escapes them) make a line invalid JSON
  '{"t":"2026\t","measurement":"m","tags":{"a":"1"},"fields":{"v":1}}',
  '{"t":"2026","measurement":"m\u0001","tags":{"a":"1"},"fields":{"v":1}}',
  '{"t":"2026","measurement":"m","tags":{"a":"\t"},"fields":{"v":1}}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v\t":1}}',
  '{"t":"2026","measurement":"m","tags":{"a":"1"},"fields":{"v":"x\ty"}}',
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

/** The fast path's contract: a line it reads is what JSON.parse + isSample make of it, same key order. */
function checkAgainstSlow(line: string, cache: SampleLineCache): boolean {
  const s = fastSample(line, cache);
  if (s === undefined) return false;
  const want = slow(line);
  // (expect only on a difference: the random test checks thousands of lines)
  if (!isDeepStrictEqual(s, want) || JSON.stringify(s) !== JSON.stringify(want)) {
    expect(s, line).toStrictEqual(want);
    expect(JSON.stringify(s), line).toBe(JSON.stringify(want));
  }
  return true;
}

describe("fastSample on the power poller's lines (the repeated-shape path)", () => {
  const power = (t: string, host: string, tr: string, fields: string) =>
    `{"t":"${t}","measurement":"power","tags":{"experiment":"x","host":"${host}","treatment":"${tr}","rep":"0"},"fields":${fields}}`;

  it('reads hosts taking turns, a new treatment, one host alone, and a changed field key', () => {
    const cache = new SampleLineCache();
    const lines: string[] = [];
    for (const tr of ['t1', 't2'])
      for (let i = 0; i < 4; i++)
        for (const h of ['h1', 'h2']) lines.push(power(`2026-11-20T00:00:0${i}.000Z`, h, tr, `{"watts":${100 + i}.25}`));
    for (let i = 0; i < 3; i++) lines.push(power('2026-11-20T00:00:09.000Z', 'h3', 't2', `{"watts":-${i}e-3}`));
    lines.push(power('2026-11-20T00:00:10.000Z', 'h3', 't2', '{"kw":0.5}'), power('2026-11-20T00:00:10.000Z', 'h3', 't2', '{"kw":7}'));
    lines.push(
      power('2026-11-20T00:00:11.000Z', 'h1', 't1', '{"watts":1}'),
      power('2026-11-20T00:00:11.000Z', 'h2', 't1', '{"kw":2,"watts":3}'),
    );
    for (const l of lines) expect(checkAgainstSlow(l, cache), l).toBe(true);
  });

  it('declines, or reads as JSON.parse does, fields that only start like the last ones', () => {
    const cache = new SampleLineCache();
    const ok = power('2026-11-20T00:00:00.000Z', 'h1', 't1', '{"watts":1.5}');
    const odd = [
      '{"watts":01}',
      '{"watts":1.}',
      '{"watts":+1}',
      '{"watts":1,"x":2}',
      '{"watts":"12"}',
      '{"watts":1e400}',
      '{"watts":null}',
      '{"watts":true}',
      '{"watts":1} ',
      '{"watts":1}',
      '{"watts":1}}',
      '{"watts":-}',
      '{"watts":}',
      '{"watts" :1}',
      '{"watt":1}',
      '{"watts":1,"watts":2}',
      '{}',
    ];
    for (const f of odd) {
      checkAgainstSlow(ok, cache);
      const line = power('2026-11-20T00:00:00.500Z', 'h1', 't1', f);
      const s = fastSample(line, cache);
      if (s !== undefined) expect(s, line).toStrictEqual(slow(line));
    }
    // the plain ones among them are still read
    expect(fastSample(power('2026-11-20T00:00:00.500Z', 'h1', 't1', '{"watts":1,"x":2}'), cache)?.fields).toEqual({ watts: 1, x: 2 });
    expect(fastSample(power('2026-11-20T00:00:00.500Z', 'h1', 't1', '{"watts":"12"}'), cache)?.fields).toEqual({ watts: '12' });
  });

  it("never reads a damaged line differently from JSON.parse (random damage to the writer's lines)", () => {
    const rng = seededRng(17);
    const cache = new SampleLineCache();
    const chars = '{}[]",:\\ 0123456789.-+eEatrueflsn\u00e9\t\u0001';
    let read = 0,
      declined = 0;
    for (let i = 0; i < 6000; i++) {
      const t = `2026-11-20T00:00:${String(i % 60).padStart(2, '0')}.000Z`;
      const good = power(t, `h${i % 2}`, `t${(i >> 6) % 3}`, `{"watts":${(i * 1.37).toFixed(i % 4)}}`);
      // the cache sees good lines between damaged ones, so damaged lines meet a warm shape cache
      expect(checkAgainstSlow(good, cache)).toBe(true);
      const at = rng.int(good.length);
      const c = chars[rng.int(chars.length)];
      const op = rng.int(3);
      // delete a character, replace it, or insert one before it
      const bad = good.slice(0, at) + (op === 0 ? '' : c) + good.slice(op === 2 ? at : at + 1);
      // a declined line goes to JSON.parse and the schema (streamSamples): only what the fast path claims is checked
      if (checkAgainstSlow(bad, cache)) read++;
      else declined++;
    }
    expect(read).toBeGreaterThan(300);
    expect(declined).toBeGreaterThan(300);
  });
});

/** fastNumber's contract: a line it takes is, as numberSample, what JSON.parse + isSample make of it (same key order). */
function checkNumberAgainstSlow(line: string, cache: SampleLineCache): boolean {
  if (!fastNumber(line, cache)) return false;
  const s = numberSample(cache.read);
  const want = slow(line);
  if (!isDeepStrictEqual(s, want) || JSON.stringify(s) !== JSON.stringify(want)) {
    expect(s, line).toStrictEqual(want);
    expect(JSON.stringify(s), line).toBe(JSON.stringify(want));
  }
  return true;
}

describe('fastNumber (power readings without a sample object)', () => {
  const power = (t: string, host: string, tr: string, fields: string) =>
    `{"t":"${t}","measurement":"power","tags":{"experiment":"x","host":"${host}","treatment":"${tr}","rep":"0"},"fields":${fields}}`;

  it('reads repeated one-number lines as JSON.parse does, sharing tags and a repeated time string', () => {
    const cache = new SampleLineCache();
    let taken = 0;
    const lines: string[] = [];
    for (const tr of ['t1', 't2'])
      for (let i = 0; i < 5; i++)
        for (const h of ['h1', 'h2']) lines.push(power(`2026-11-20T00:00:0${i}.000Z`, h, tr, `{"watts":${100 + i}.25}`));
    const times: string[] = [];
    for (const l of lines) {
      // as streamSamples does: fastNumber first, then fastSample (which learns new shapes), with one cache
      if (checkNumberAgainstSlow(l, cache)) {
        taken++;
        times.push(cache.read.t);
      } else expect(checkAgainstSlow(l, cache), l).toBe(true);
    }
    expect(taken).toBeGreaterThanOrEqual(lines.length - 6);
    // the two hosts' lines of one poll get the very same string (a consumer compares one pointer)
    const pairs = times.filter((t, i) => i > 0 && t === times[i - 1]);
    expect(pairs.length).toBeGreaterThan(5);
    // the shared tags object is the cache's: a sample made of it has its own
    const s = numberSample(cache.read);
    s.tags.host = 'changed';
    expect(cache.read.tags.host).not.toBe('changed');
  });

  it('declines what is not a plain line with one plain number (then fastSample or JSON.parse decide)', () => {
    const cache = new SampleLineCache();
    const ok = power('2026-11-20T00:00:00.000Z', 'h1', 't1', '{"watts":1.5}');
    fastSample(ok, cache);
    expect(fastNumber(ok, cache)).toBe(true);
    for (const line of [
      power('2026-11-20T00:00:00\\u002e000Z', 'h1', 't1', '{"watts":1.5}'),
      power('2026-11-20T00:00:00.000Z	', 'h1', 't1', '{"watts":1.5}'),
      power('', 'h1', 't1', '{"watts":1.5}'),
      power('2026-11-20T00:00:00.000Z', 'h1', 't1', '{"watts":01}'),
      power('2026-11-20T00:00:00.000Z', 'h1', 't1', '{"watts":1,"x":2}'),
      power('2026-11-20T00:00:00.000Z', 'h1', 't1', '{"watts":"1"}'),
      power('2026-11-20T00:00:00.000Z', 'h1', 't1', '{"watt":1}'),
      power('2026-11-20T00:00:00.000Z', 'h9', 't1', '{"watts":1}'),
      power('2026-11-20T00:00:00.000Z', 'h1', 't1', '{"watts":1} '),
      `${power('2026-11-20T00:00:00.000Z', 'h1', 't1', '{"watts":1}')}\r`,
      power('2026-11-20T00:00:00.000Z', 'h1', 't1', '{"watts":1}').replace('"t":"', '"t": "'),
    ])
      expect(fastNumber(line, cache), line).toBe(false);
  });

  it("never reads a damaged line differently from JSON.parse (random damage to the writer's lines)", () => {
    const rng = seededRng(23);
    const cache = new SampleLineCache();
    const chars = '{}[]",:\\ 0123456789.-+eEatrueflsn\u00e9\t\u0001';
    let read = 0,
      declined = 0,
      goodRead = 0;
    for (let i = 0; i < 6000; i++) {
      const t = `2026-11-20T00:00:${String((i >> 1) % 60).padStart(2, '0')}.000Z`;
      const good = power(t, `h${i % 2}`, `t${(i >> 6) % 3}`, `{"watts":${(i * 1.37).toFixed(i % 4)}}`);
      if (checkNumberAgainstSlow(good, cache)) goodRead++;
      else expect(checkAgainstSlow(good, cache)).toBe(true);
      const at = rng.int(good.length);
      const c = chars[rng.int(chars.length)];
      const op = rng.int(3);
      const bad = good.slice(0, at) + (op === 0 ? '' : c) + good.slice(op === 2 ? at : at + 1);
      if (checkNumberAgainstSlow(bad, cache)) read++;
      else {
        declined++;
        checkAgainstSlow(bad, cache);
      }
    }
    // (a damaged line read by fastSample can take the place of a good shape: the next good line re-learns it)
    expect(goodRead).toBeGreaterThan(2500);
    expect(read).toBeGreaterThan(300);
    expect(declined).toBeGreaterThan(300);
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
