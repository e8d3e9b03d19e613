/**
 * analyzeRun's pass over the dirty_trace and power samples (a campaign's
 * power.jsonl holds a million readings, ~170 MB), as a function of plain
 * data, so it can run in a worker thread (power-pass-worker.ts) while the
 * main thread computes the analyses that do not need it. One
 * implementation: analyzeRun runs powerPass() itself or has the worker run
 * it, and gets the same result either way (in a worker the result is
 * structured-cloned, and the plan power moved as Float64Arrays).
 */
import { basename } from 'node:path';
import type { CurvePoint } from './models/hotcold.ts';
import type { PowerPoint } from './analyze.ts';
import type { PowerPoint as EnergyPoint } from '../harness/power/energy.ts';
import type { Sample } from '../harness/store/schema/index.ts';
import { PeakAccumulator } from '../harness/experiment/peak-power.ts';
import { TsWorker } from '../harness/util/ts-worker.ts';
import { IsoMsStream } from './iso-ms.ts';
import { numberSample, type NumberLine } from './load-sample-line.ts';
import { parseIsoMs } from '../harness/util/time.ts';
import { inMemoryRun, streamSampleLines, type Migration, type Problem } from './rundir.ts';

/**
 * Which power readings the timeline of a migration keeps (see powerKept),
 * as plain data for a pass in a worker thread, which has no migrations
 * (timelinePowerFilter in timeline.ts makes it). Here and not in
 * timeline.ts: the worker would load that module's imports too (~0.6 s).
 */
export interface TimelinePowerFilter {
  src: string;
  dst: string;
  treatment: string;
  span: { fromMs: number; toMs: number };
}

/** Power of the migration's two hosts in its span, tagged with its treatment or none (readings carry the treatment running then). */
export function powerKept(
  s: Pick<Sample, 't' | 'tags'>,
  m: Pick<Migration, 'src' | 'dst' | 'treatment'>,
  span: { fromMs: number; toMs: number },
): boolean {
  if (s.tags.host !== m.src && s.tags.host !== m.dst) return false;
  if (s.tags.treatment && s.tags.treatment !== m.treatment) return false;
  const t = parseIsoMs(s.t);
  return t >= span.fromMs && t <= span.toMs;
}

/**
 * For a pass over the samples that reads power.jsonl anyway (powerPass):
 * `onSample` keeps the power readings the filter takes, in `power`, which
 * setTimelinePower (timeline.ts) then hands to collectTimelineSamples, so
 * the report does not read the run's largest file again. The same readings,
 * in the same order, as its own pass would keep.
 */
export function timelinePowerTap(f: TimelinePowerFilter): {
  onSample: (s: Sample, file: string) => void;
  /** The same for a line streamSampleLines read as a NumberLine (a sample is made only for a kept reading). */
  onNumber: (r: Readonly<NumberLine>, file: string) => void;
  power: Sample[];
} {
  const power: Sample[] = [];
  return {
    onSample: (s, file) => {
      if (s.measurement === 'power' && powerKept(s, f, f.span) && basename(file) === 'power.jsonl') power.push(s);
    },
    onNumber: (r, file) => {
      if (r.measurement === 'power' && powerKept(r, f, f.span) && basename(file) === 'power.jsonl') power.push(numberSample(r));
    },
    power,
  };
}

/** What the pass needs from the run and the main thread's analysis: plain data. */
export interface PowerPassInput {
  /** The run's sample files (RunDir.sampleFiles); only dirty_trace.jsonl and power.jsonl are read. */
  sampleFiles: string[];
  /** Epoch ms window of the report's power timeline (null: no points). */
  window: { start: number; end: number } | null;
  /** Keep every reading per host (runs with plans: a plan's energy integrates its hosts' readings). */
  planPower: boolean;
  /** The power readings the report's migration timeline keeps (timelinePowerFilter), null when there is none. */
  tap: TimelinePowerFilter | null;
}

/** Each host's readings in order as two parallel arrays (moved, not copied, out of a worker). */
export interface PackedPower {
  tMs: Float64Array;
  watts: Float64Array;
}

export interface PowerPassResult {
  /** D(t) points of the dirty_trace samples per workload tag. */
  curves: Map<string, CurvePoint[]>;
  /** Power readings inside the window. */
  points: PowerPoint[];
  /** Peak summed power per treatment tag (PeakAccumulator), in the order of their first reading; treatments without one left out. */
  peak: Map<string, number>;
  /** Every reading with a valid time per host (null unless input.planPower); planPowerPoints makes the points. */
  planPower: Map<string, PackedPower> | null;
  /** Power readings with a finite watts value. */
  samples: number;
  /** The timeline tap's readings (null without input.tap). */
  tapPower: Sample[] | null;
  /** Bad sample lines in the order found, for reportSampleProblems (not yet in any run's problems). */
  problems: Problem[];
}

/** The pass: streams dirty_trace and power samples of `input.sampleFiles` once. */
export async function powerPass(input: PowerPassInput): Promise<PowerPassResult> {
  const { window } = input;
  const curves = new Map<string, CurvePoint[]>();
  const points: PowerPoint[] = [];
  // Peak power per treatment, defined once (harness/experiment/peak-power.ts) for the harness and analysis.
  const peaks = new Map<string, PeakAccumulator>();
  let powerSamples = 0;
  let lastT = '';
  let lastMs = NaN;
  const times = new IsoMsStream();
  // a plan's energy integrates its hosts' readings over its window: kept per host for runs with plans (1 Hz per host)
  const planPower = input.planPower ? new Map<string, { t: number[]; w: number[] }>() : null;
  // the report's timeline takes its power readings from this pass
  const tap = input.tap ? timelinePowerTap(input.tap) : null;
  const problems: Problem[] = [];
  const onDirty = (s: Sample) => {
    const w = s.tags.workload ?? '';
    const t = Number(s.fields.window_s),
      d = Number(s.fields.dirtied_mib);
    if (!Number.isFinite(t) || !Number.isFinite(d)) return;
    let arr = curves.get(w);
    if (!arr) curves.set(w, (arr = []));
    arr.push({ t, d });
  };
  /** A power reading: its t text, tags and Number(fields.watts). */
  const onPower = (tText: string, tags: Readonly<Record<string, string>>, watts: number) => {
    if (!Number.isFinite(watts)) return;
    powerSamples++;
    // the two hosts' readings of one poll share their timestamp text: parse it once (from its minute's ms when that is the last one's)
    if (tText !== lastT) {
      lastT = tText;
      lastMs = times.ms(tText);
    }
    const t = lastMs;
    const host = tags.host ?? '';
    if (window && t >= window.start && t <= window.end) points.push({ t, host, watts });
    if (planPower && Number.isFinite(t)) {
      let arr = planPower.get(host);
      if (!arr) planPower.set(host, (arr = { t: [], w: [] }));
      arr.t.push(t);
      arr.w.push(watts);
    }
    const tr = tags.treatment;
    if (tr) {
      let acc = peaks.get(tr);
      if (!acc) peaks.set(tr, (acc = new PeakAccumulator()));
      acc.add(t, host, watts);
    }
  };
  // the pass needs only the file list of a run; its bad lines are collected for the caller's run
  const run = { ...inMemoryRun({ manifest: { name: 'power pass' } }), sampleFiles: input.sampleFiles };
  // the power poller's lines (one number) are read without making a sample each (streamSampleLines)
  await streamSampleLines(
    run,
    {
      onSample: (s, file) => {
        tap?.onSample(s, file);
        if (s.measurement === 'dirty_trace') onDirty(s);
        else onPower(s.t, s.tags, Number(s.fields.watts));
      },
      onNumber: (r, file) => {
        if (r.measurement === 'dirty_trace') {
          const s = numberSample(r);
          tap?.onSample(s, file);
          onDirty(s);
          return;
        }
        tap?.onNumber(r, file);
        // Number(fields.watts) of fields that are one number under r.key
        onPower(r.t, r.tags, r.key === 'watts' ? r.value : NaN);
      },
      onProblem: (p) => problems.push(p),
    },
    ['dirty_trace', 'power'],
  );
  const peak = new Map<string, number>();
  for (const [tr, acc] of peaks) {
    const total = acc.result().total;
    if (total !== null) peak.set(tr, total);
  }
  return {
    curves,
    points,
    peak,
    planPower: planPower && new Map([...planPower].map(([h, a]) => [h, { tMs: Float64Array.from(a.t), watts: Float64Array.from(a.w) }])),
    samples: powerSamples,
    tapPower: tap ? tap.power : null,
    problems,
  };
}

/** The buffers of a result a worker moves instead of copying. */
export function powerPassBuffers(r: PowerPassResult): ArrayBuffer[] {
  return r.planPower ? [...r.planPower.values()].flatMap((p) => [p.tMs.buffer as ArrayBuffer, p.watts.buffer as ArrayBuffer]) : [];
}

/** The plan power as planEnergy reads it: per host its readings `{ tMs, watts }` in order. */
export function planPowerPoints(packed: Map<string, PackedPower> | null): Map<string, EnergyPoint[]> | null {
  if (!packed) return null;
  const out = new Map<string, EnergyPoint[]>();
  for (const [host, { tMs, watts }] of packed) {
    const pts: EnergyPoint[] = new Array(tMs.length);
    for (let i = 0; i < tMs.length; i++) pts[i] = { tMs: tMs[i], watts: watts[i] };
    out.set(host, pts);
  }
  return out;
}

/**
 * A worker thread running powerPass (power-pass-worker.ts). Starting takes
 * ~0.5 s (tsx and the modules the pass needs), so a caller that will analyse a
 * large run starts it early (e.g. before loadRunDir) and hands it to
 * analyzeRun (AnalyzeOptions.powerWorker), which never closes it: close()
 * when done. An idle worker does not keep the process alive.
 */
export class PowerPassWorker {
  private readonly worker = new TsWorker(new URL('./power-pass-worker.ts', import.meta.url), 'power pass');

  /** Resolves once the worker serves (rejects if it cannot start). */
  get ready(): Promise<void> {
    return this.worker.ready;
  }

  /** powerPass(input) in the worker. */
  run(input: PowerPassInput): Promise<PowerPassResult> {
    return this.worker.call<PowerPassResult>('powerPass', input);
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}

/** Starts a power-pass worker (see PowerPassWorker). */
export function startPowerPassWorker(): PowerPassWorker {
  return new PowerPassWorker();
}
