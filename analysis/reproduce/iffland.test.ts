import { describe, expect, it } from 'vitest';
import { FindingSchema } from '../../harness/store/schema/findings.ts';
import { evaluateIffland, IFFLAND_SPECS } from './iffland.ts';
import { mig, run, study } from './fixture.test-helpers.ts';
import type { Migration } from '../rundir.ts';

const byId = (fs: ReturnType<typeof evaluateIffland>, id: string) => fs.find((f) => f.id === id)!;
const spec = (rate: string, delay = '0ms', loss = '0%') => ({ testbed: { shaping: [{ link: 'r1-h1/mig', rate, delay, loss }] } });

function phases(treatment: string, mbit: number, rows: [number, number, number, number][]): Migration[] {
  return rows.map(([total, preop, down, post], rep) =>
    mig({
      treatment,
      rep,
      total_ms: total,
      preop_ms: preop,
      downtime_observed_ms: down,
      postop_ms: post,
      link_rate_mbit: mbit,
      memory_mib: 128,
    }),
  );
}

describe('iffland evaluator', () => {
  const bw = run(
    IFFLAND_SPECS.bandwidth,
    [
      ...phases('b100', 100, [
        [5000, 4600, 300, 100],
        [5100, 4700, 310, 105],
        [4950, 4550, 290, 98],
      ]),
      ...phases('b10', 10, [
        [50000, 49500, 330, 102],
        [51000, 50500, 320, 99],
        [49800, 49300, 340, 101],
      ]),
    ],
    {
      spec: spec('100mbit'),
      treatments: [
        { id: 'b100', levels: { 'testbed.shaping[0].rate': '100mbit' } },
        { id: 'b10', levels: { 'testbed.shaping[0].rate': '10mbit' } },
      ],
    },
  );
  const drop = run(
    IFFLAND_SPECS.drop,
    [
      ...phases('l1', 100, [
        [7000, 6600, 320, 110],
        [7200, 6700, 330, 115],
      ]),
      ...phases('l5', 100, [
        [20000, 19500, 600, 150],
        [21000, 20500, 650, 160],
      ]),
    ],
    {
      spec: spec('100mbit', '0ms', '1%'),
      treatments: [
        { id: 'l1', levels: { 'testbed.shaping[0].loss': '1%' } },
        { id: 'l5', levels: { 'testbed.shaping[0].loss': '5%' } },
      ],
    },
  );
  const lat = run(
    IFFLAND_SPECS.latency,
    phases('d100', 100, [
      [5200, 4800, 300, 300],
      [5300, 4900, 310, 310],
    ]),
    {
      spec: spec('100mbit', '25ms'),
      treatments: [{ id: 'd100', levels: { 'testbed.shaping[0].delay': '100ms' } }],
    },
  );

  it('Iffländer-like data: every evaluated finding holds; block migration not run', () => {
    const fs = evaluateIffland(
      study({ name: IFFLAND_SPECS.bandwidth, run: bw }, { name: IFFLAND_SPECS.drop, run: drop }, { name: IFFLAND_SPECS.latency, run: lat }),
    );
    for (const f of fs) expect(FindingSchema.safeParse(f).success).toBe(true);
    for (const id of [
      'bw-migtime',
      'bw-preop',
      'bw-downtime',
      'bw-postop',
      'drop-migtime',
      'drop-downtime',
      'drop-postop',
      'latency-migtime',
    ])
      expect(byId(fs, id).verdict, id).toBe('holds');
    expect(byId(fs, 'drop-migtime').numbers.ideal_factor).toBeCloseTo(1 / 0.95);
    expect(byId(fs, 'live-vs-block').verdict).toBe('not run');
  });

  it('drop no worse than an ideal protocol -> does not hold', () => {
    const ideal = run(
      IFFLAND_SPECS.drop,
      phases('l5', 100, [
        [5250, 4800, 300, 100],
        [5300, 4850, 300, 100],
      ]),
      {
        spec: spec('100mbit', '0ms', '5%'),
      },
    );
    const fs = evaluateIffland(study({ name: IFFLAND_SPECS.bandwidth, run: bw }, { name: IFFLAND_SPECS.drop, run: ideal }));
    expect(byId(fs, 'drop-migtime').verdict).toBe('does not hold');
    expect(byId(fs, 'latency-migtime').verdict).toBe('not run');
  });
});
