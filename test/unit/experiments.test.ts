import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadSpec } from '../../harness/spec/load.ts';
import { expandTreatments } from '../../harness/experiment/treatments.ts';
import { ROOT } from '../support/cli.ts';

const dir = join(ROOT, 'experiments');

describe('shipped experiment specs', () => {
  it.each(readdirSync(dir).filter((f) => f.endsWith('.yaml')))('%s validates and expands', (f) => {
    const { spec, raw } = loadSpec(join(dir, f));
    const ts = expandTreatments(spec, raw, f);
    expect(ts.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ts.map((t) => t.id)).size).toBe(ts.length);
  });
});
