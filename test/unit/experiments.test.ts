import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkExperiment } from '../../harness/experiment/treatments.ts';
import { ROOT } from '../support/cli.ts';

const dir = join(ROOT, 'experiments');

describe('shipped experiment specs', () => {
  // the checks `run` makes before anything is built: schema, bounds, every treatment and its plan
  it.each(readdirSync(dir).filter((f) => f.endsWith('.yaml')))('%s validates and expands', (f) => {
    const ts = checkExperiment(join(dir, f)).treatments;
    expect(ts.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ts.map((t) => t.id)).size).toBe(ts.length);
  });
});
