/**
 * A study directory as evaluators read it: every run directory under it (one
 * per spec; a spec run twice counts once, the latest), keyed by spec name,
 * with the `workload` client samples when the study needs them.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../harness/util/errors.ts';
import type { Sample } from '../../harness/store/schema/index.ts';
import { loadRunDir, streamSamples } from '../rundir.ts';
import type { SpecRun, StudyData } from './common.ts';
import type { Study } from './studies.ts';

/** Run directories directly under `dir` (those with a manifest.json), oldest first. */
export function runDirsIn(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`study directory ${dir} does not exist`);
  return readdirSync(dir)
    .sort()
    .map((f) => join(dir, f))
    .filter((p) => existsSync(join(p, 'manifest.json')));
}

export async function loadStudy(dir: string, study: Study): Promise<StudyData> {
  const names = new Set(study.specs.map((s) => s.name));
  const byName = new Map<string, SpecRun>();
  for (const p of runDirsIn(dir)) {
    const run = loadRunDir(p);
    if (!names.has(run.manifest.name)) continue;
    byName.set(run.manifest.name, { name: run.manifest.name, run, workload: [] });
  }
  for (const r of byName.values()) {
    // power readings (1 Hz per host: small); only a run with measure.power has the file
    const power: Sample[] = [];
    await streamSamples(r.run, (s) => power.push(s), ['power']);
    r.power = power;
  }
  if (study.samples)
    for (const r of byName.values()) {
      const got: Sample[] = [];
      await streamSamples(r.run, (s) => got.push(s), ['workload']);
      r.workload = got;
    }
  return { runs: [...byName.values()] };
}
