/**
 * SvgRenderer: a report drawn in the worker is the report drawn in a fresh
 * process (vega's clip and gradient ids count per JS realm, so the reference
 * comes from `migbench report` in its own process, not from this one), and a
 * spec vega rejects fails with a clear error instead of hanging.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TopLevelSpec } from 'vega-lite';
import { generateSyntheticRun } from '../../test/fixtures/synthetic-run.ts';
import { loadRunDir } from '../rundir.ts';
import { SvgRenderError, SvgRenderer } from './svg-renderer.ts';
import { writeReport } from './write.ts';

const root = mkdtempSync(join(tmpdir(), 'migbench-svg-worker-'));
const renderers: SvgRenderer[] = [];
const start = () => {
  const r = SvgRenderer.start();
  renderers.push(r);
  return r;
};
afterAll(async () => {
  await Promise.all(renderers.map((r) => r.close()));
  rmSync(root, { recursive: true, force: true });
});

const BAR: TopLevelSpec = {
  data: { values: [{ x: 'a', y: 1 }] },
  mark: 'bar',
  encoding: { x: { field: 'x', type: 'nominal' }, y: { field: 'y', type: 'quantitative' } },
};

/** A small synthetic run and its report from `migbench report` in a process of its own (made once). */
let made: { dir: string; fresh: string } | null = null;
function freshReport() {
  if (made) return made;
  const dir = generateSyntheticRun(join(root, 'run'), {
    seed: 1,
    reps: 3,
    vmSizesMiB: [256],
    wsetsMiB: [16, 64],
    ratesMbit: [100, 400],
    planVms: 4,
    failRate: 0.02,
    powerSamples: 5_000,
  });
  const fresh = join(root, 'fresh');
  const bin = fileURLToPath(new URL('../../bin/migbench.js', import.meta.url));
  execFileSync(process.execPath, [bin, 'report', dir, '--out', fresh], { stdio: 'pipe' });
  return (made = { dir, fresh });
}

/** Where two texts first differ, with what follows there in each ('' when equal): short, unlike a diff of 1 MB. */
function firstDifference(a: string, b: string): string {
  if (a === b) return '';
  let i = 0;
  while (a[i] === b[i]) i++;
  return `at ${i}: ${JSON.stringify(a.slice(i, i + 80))} vs ${JSON.stringify(b.slice(i, i + 80))}`;
}

async function expectSameReport(out: string, r: Awaited<ReturnType<typeof writeReport>>) {
  const { fresh } = freshReport();
  expect(r.html).toBe(join(out, 'index.html'));
  const html = readFileSync(r.html, 'utf8');
  expect(html).toMatch(/clip-path="url\(#clip\d+\)"/); // the ids the comparison is about are there
  expect(firstDifference(html, readFileSync(join(fresh, 'index.html'), 'utf8'))).toBe('');
  expect(readFileSync(r.markdown, 'utf8')).toBe(readFileSync(join(fresh, 'summary.md'), 'utf8'));
}

describe('SvgRenderer', () => {
  it('writes the report byte for byte as `migbench report` does in a fresh process', async () => {
    const renderer = start();
    const { dir } = freshReport();
    await renderer.ready;
    const out = join(root, 'worker');
    const r = await writeReport(loadRunDir(dir), out, { renderer });
    expect(r.figures.filter((f) => f.rendered).length).toBeGreaterThan(2);
    await expectSameReport(out, r);
  });

  // the only test here that draws in this thread: its vega ids count from 1 like a fresh process's
  it('falls back to drawing in this thread, with a warning and the same report, when the worker is gone', async () => {
    const renderer = start();
    await renderer.close();
    const { dir } = freshReport();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const out = join(root, 'fallback');
      await expectSameReport(out, await writeReport(loadRunDir(dir), out, { renderer }));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([
      expect.stringMatching(/^SVG render worker failed \(svg-render worker was closed\); drawing .* in this thread$/),
    ]);
  });

  it('renders several specs in order, and names the spec vega rejects without hanging', async () => {
    const renderer = start();
    const svgs = await renderer.render([BAR, { ...BAR, mark: 'point' }]);
    expect(svgs).toHaveLength(2);
    expect(svgs[0]).toMatch(/^<svg/);
    expect(svgs[1]).not.toBe(svgs[0]);
    const bad = { ...BAR, transform: [{ calculate: 'datum.y +', as: 'z' }] } as TopLevelSpec; // not an expression
    const err = await renderer.render([BAR, bad]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SvgRenderError);
    expect((err as SvgRenderError).index).toBe(1);
    expect((err as Error).message).toBe('vega could not render spec 1: Unexpected end of input');
    // the worker goes on serving
    expect(await renderer.render([BAR])).toHaveLength(1);
  });

  it('fails the calls of a closed renderer with the worker named', async () => {
    const renderer = start();
    await renderer.ready;
    await renderer.close();
    await expect(renderer.render([BAR])).rejects.toThrow(/svg-render worker/);
  });
});
