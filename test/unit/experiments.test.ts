import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkExperiment } from '../../harness/experiment/treatments.ts';
import { ROOT } from '../support/cli.ts';
import { derivedSpecText } from '../../harness/cli/reproduce.ts';
import { STUDIES } from '../../analysis/reproduce/studies.ts';

const dir = join(ROOT, 'experiments');

describe('shipped experiment specs', () => {
  // the checks `run` makes before anything is built: schema, bounds, every treatment and its plan
  // specs directly under experiments/ and in the per-study folders (experiments/<study>/)
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.yaml'));
  it.each(files)('%s validates and expands', (f) => {
    const ts = checkExperiment(join(dir, f)).treatments;
    expect(ts.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ts.map((t) => t.id)).size).toBe(ts.length);
  });
});

describe('study specs', () => {
  // every spec `migbench reproduce` runs, full and --quick, validates and expands
  const cases = STUDIES.flatMap((st) => st.specs.flatMap((sp) => [false, true].map((quick) => [st.name, sp.file, quick, sp] as const)));
  it.each(cases)('%s/%s (quick %s)', (study, file, quick, sp) => {
    const tmp = mkdtempSync(join(tmpdir(), 'mb-study-'));
    try {
      const f = join(tmp, file);
      writeFileSync(f, derivedSpecText(readFileSync(join(dir, study, file), 'utf8'), sp, { quick }));
      const { spec, treatments } = checkExperiment(f);
      expect(spec.name).toBe(sp.name);
      expect(treatments.length).toBeGreaterThanOrEqual(1);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
