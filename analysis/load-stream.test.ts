/** One pass serving two readers, and lines skipped unparsed, give what separate full passes give. */
import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticRun } from '../test/fixtures/synthetic-run.ts';
import { analyzeRun } from './analyze.ts';
import { lineTime, numberSample } from './load-sample-line.ts';
import { loadRunDir, streamSampleLines, streamSamples } from './rundir.ts';
import { collectTimelineSamples, representativeMigration } from './timeline.ts';
import type { Sample } from '../harness/store/schema/index.ts';

const root = mkdtempSync(join(tmpdir(), 'migbench-load-stream-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const FIXTURE = new URL('../test/fixtures/timeline/', import.meta.url).pathname;
const synthetic = () => generateSyntheticRun(join(root, 'synth'), { seed: 3, reps: 3, powerSamples: 4000, progress: true });

describe("the report's timeline takes its power from analyzeRun's pass", () => {
  it.each([
    ['a recorded run', FIXTURE],
    ['a synthetic campaign', ''],
  ])('%s: the same samples as a pass of its own', async (_, dir) => {
    const d = dir || synthetic();
    const fresh = loadRunDir(d);
    const m0 = representativeMigration(fresh)!;
    const own = await collectTimelineSamples(fresh, m0);
    const analysed = loadRunDir(d);
    await analyzeRun(analysed);
    const tapped = await collectTimelineSamples(analysed, representativeMigration(analysed)!);
    expect(tapped).toStrictEqual(own);
    expect(own.power.length).toBeGreaterThan(0);
    expect(analysed.problems).toStrictEqual(fresh.problems);
  });
});

describe('streamSamples keepLine', () => {
  it('skips lines unparsed and keeps the rest as a full pass does', async () => {
    const run = loadRunDir(synthetic());
    const all: Sample[] = [];
    await streamSamples(run, (s) => all.push(s), ['power']);
    const cut = all[Math.floor(all.length / 2)].t;
    const kept: Sample[] = [];
    let asked = 0;
    await streamSamples(
      run,
      (s) => kept.push(s),
      ['power'],
      undefined,
      (line) => {
        asked++;
        return (lineTime(line) ?? '') >= cut;
      },
    );
    expect(asked).toBe(all.length);
    expect(kept).toStrictEqual(all.filter((s) => s.t >= cut));
  });
});

describe('streamSampleLines', () => {
  it('hands one-number lines to onNumber as the samples streamSamples gives, in the same order', async () => {
    const d = generateSyntheticRun(join(root, 'lines'), { seed: 5, reps: 2, powerSamples: 3000 });
    // odd lines among the writer's: other shapes, escapes, two fields, a key other than watts, damage
    const t = '2026-11-20T00:00:01.250Z';
    appendFileSync(
      join(d, 'samples', 'power.jsonl'),
      [
        `{"t":"${t}","measurement":"power","tags":{"host":"r1\\u002dh1","treatment":"t0001"},"fields":{"watts":1.5e2}}`,
        `{"t":"${t}","measurement":"power","tags":{"host":"r1-h1","treatment":"t0001"},"fields":{"watts":2}}`,
        `{"t":"${t}","measurement":"power","tags":{"host":"r1-h1","treatment":"t0001"},"fields":{"watts":3}}`,
        `{"t":"${t}","measurement":"power","tags":{"host":"r1-h1","treatment":"t0001"},"fields":{"kw":3}}`,
        `{"t":"${t}","measurement":"power","tags":{"host":"r1-h1","treatment":"t0001"},"fields":{"watts":4,"x":1}}`,
        `{"t":"${t}","measurement":"power","tags":{"host":"r1-h1","treatment":"t0001"},"fields":{"watts":01}}`,
        `{"t":"${t}","measurement":"power","tags":{"host":"r1-h1","treatment":"t0001"},"fields":{"watts":-0}}`,
        'null',
        '',
      ].join('\n'),
    );
    const run = loadRunDir(d);
    const all: Sample[] = [];
    const n = await streamSamples(run, (s) => all.push(s), ['power', 'dirty_trace']);
    const run2 = loadRunDir(d);
    const mixed: Sample[] = [];
    let numbers = 0;
    const m = await streamSampleLines(
      run2,
      {
        onSample: (s) => mixed.push(s),
        onNumber: (r) => {
          numbers++;
          mixed.push(numberSample(r));
        },
      },
      ['power', 'dirty_trace'],
    );
    expect(m).toBe(n);
    expect(mixed).toStrictEqual(all);
    expect(JSON.stringify(mixed)).toBe(JSON.stringify(all));
    expect(numbers).toBeGreaterThan(all.length / 2);
    expect(run2.problems).toStrictEqual(run.problems);
  });
});
