import { describe, expect, it } from 'vitest';
import { FindingSchema } from '../../harness/store/schema/findings.ts';
import type { Sample } from '../../harness/store/schema/index.ts';
import { evaluateTruong, responseTimes, TRUONG_SPECS } from './truong.ts';
import { migs, run, study } from './fixture.test-helpers.ts';

const byId = (fs: ReturnType<typeof evaluateTruong>, id: string) => fs.find((f) => f.id === id)!;

function samples(treatment: string, op: string, phase: string, values: number[]): Sample[] {
  return values.map((v, i) => ({
    t: new Date(1e12 + i * 1000).toISOString(),
    measurement: 'workload',
    tags: { treatment, vm: 'vm1', op: `probe-${op}` },
    fields: { phase, response_ms: v, ok: true },
  }));
}

const treatments = [
  { id: 'lo', levels: { 'vms[0].workload.percent': '83%' } },
  { id: 'hi', levels: { 'vms[0].workload.percent': '91%' } },
];

describe('truong evaluator', () => {
  const ms = [...migs('lo', [20000, 20500]), ...migs('hi', [26000, 26500])];
  const r = run(TRUONG_SPECS.mem, ms, { treatments });
  const w: Sample[] = [
    ...samples('lo', 'search', 'before', [100, 110, 105]),
    ...samples('lo', 'search', 'during', [150, 160, 155]),
    ...samples('lo', 'search', 'after', [101, 108, 104]),
    ...samples('hi', 'search', 'before', [100, 110, 105]),
    ...samples('hi', 'search', 'during', [300, 320, 310]),
    ...samples('hi', 'search', 'after', [102, 107, 106]),
    ...samples('lo', 'page', 'before', [10, 11, 10]),
    ...samples('lo', 'page', 'during', [10, 11, 10]),
    ...samples('hi', 'page', 'before', [10, 11, 10]),
    ...samples('hi', 'page', 'during', [40, 42, 41]),
    ...samples('lo', 'cpu', 'before', [500, 510, 505]),
    ...samples('lo', 'cpu', 'during', [500, 505, 510]),
    ...samples('hi', 'cpu', 'before', [500, 510, 505]),
    ...samples('hi', 'cpu', 'during', [505, 500, 510]),
    ...samples('hi', 'write20m', 'before', [800, 820, 810]),
    ...samples('hi', 'write20m', 'during', [1600, 1650, 1700]),
  ];

  it('groups response times by stressed memory, op and phase', () => {
    const rt = responseTimes(w, (t) => (t === 'hi' ? 91 : 83));
    expect(rt.get(91)?.get('search')?.during).toEqual([300, 320, 310]);
  });

  it('Truong-like data: slower during, growing with memory, page/cpu only at 91 %; no lasting slowdown -> differs', () => {
    const fs = evaluateTruong(study({ name: TRUONG_SPECS.mem, run: r, workload: w }));
    for (const f of fs) expect(FindingSchema.safeParse(f).success).toBe(true);
    expect(byId(fs, 'migtime').verdict).toBe('holds');
    expect(byId(fs, 'search-during').verdict).toBe('holds');
    expect(byId(fs, 'search-after').verdict).toBe('differs');
    expect(byId(fs, 'grows').verdict).toBe('holds');
    expect(byId(fs, 'page-cpu-only-high').verdict).toBe('holds');
    expect(byId(fs, 'io-write-during').verdict).toBe('holds');
    expect(byId(fs, 'concurrency').verdict).toBe('not run');
  });

  it('no run: every finding not run', () => {
    expect(evaluateTruong(study()).every((f) => f.verdict === 'not run')).toBe(true);
  });
});
