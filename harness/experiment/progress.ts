/**
 * Progress of a campaign: unit k/N, migrations done/total, elapsed, ETA, and
 * the bytes the current migration has sent so far. On a terminal a bar
 * (cli-progress) is redrawn under the log and every log line goes above it;
 * otherwise a plain status line follows each unit, as a log line.
 * The text and the ETA are pure functions (unit-tested); the class only keeps
 * the counters and hands the text to the terminal.
 */
import cliProgress from 'cli-progress';

export interface ProgressSnapshot {
  unitsDone: number;
  unitsTotal: number;
  migrationsDone: number;
  /** Migrations the campaign will run (moves per unit, summed); null when unknown. */
  migrationsTotal: number | null;
  elapsedMs: number;
  etaMs: number | null;
  /** The migrations running now (usually one), from their progress samples. */
  current: readonly Running[];
}

export interface Running {
  /** What the bar calls it (the VM's name). */
  id: string;
  sentBytes: number;
  remainingBytes: number | null;
}

export interface EtaInput {
  /** Since the campaign started. */
  elapsedMs: number;
  /** Since the last unit ended (0 right after it). */
  sinceLastMs: number;
  /** Wall time of each unit finished in this invocation, in order. */
  durations: readonly number[];
  /** Time before the first of them started (image, testbed, first boot): spent once, left out. */
  startupMs: number;
  unitsDone: number;
  unitsTotal: number;
}

/**
 * Time left: the mean of the last 10 unit durations plus, per unit, the time
 * spent between units since the first one started (later guest boots, pauses),
 * times the units left, less the time already spent on the current unit.
 * Never less than the estimate for the units after the current one; null
 * before a unit ended.
 */
export function estimateEta(e: EtaInput): number | null {
  const n = e.durations.length;
  if (n === 0) return null;
  const left = e.unitsTotal - e.unitsDone;
  if (left <= 0) return 0;
  const recent = e.durations.slice(-10);
  const mean = recent.reduce((a, b) => a + b, 0) / recent.length;
  const inUnits = e.durations.reduce((a, b) => a + b, 0);
  const overhead = Math.max(0, e.elapsedMs - e.sinceLastMs - e.startupMs - inUnits) / n;
  const perUnit = mean + overhead;
  return Math.max(perUnit * (left - 1), perUnit * left - Math.max(0, e.sinceLastMs));
}

/** 61_000 -> '1m01s'. */
export function fmt(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Bytes in MiB (or GiB from 1 GiB on), one decimal. */
export function fmtBytes(b: number): string {
  const mib = b / 2 ** 20;
  return mib >= 1024 ? `${(mib / 1024).toFixed(1)} GiB` : `${mib.toFixed(1)} MiB`;
}

/** 'unit 3/6 | migrations 3/6 | 1m02s elapsed, ETA 41s | vm1 45.2 MiB sent, 60.1 MiB left' (most important first: a terminal cuts the end). */
export function statusText(s: ProgressSnapshot): string {
  const parts = [
    `unit ${s.unitsDone}/${s.unitsTotal}`,
    `migrations ${s.migrationsDone}${s.migrationsTotal !== null ? `/${s.migrationsTotal}` : ''}`,
    `${fmt(s.elapsedMs)} elapsed, ETA ${s.etaMs === null ? '–' : fmt(s.etaMs)}`,
  ];
  const [one] = s.current;
  if (s.current.length === 1) {
    const left = one.remainingBytes !== null ? `, ${fmtBytes(one.remainingBytes)} left` : '';
    parts.push(`${one.id} ${fmtBytes(one.sentBytes)} sent${left}`);
  } else if (s.current.length > 1) {
    parts.push(`${s.current.length} migrating, ${fmtBytes(s.current.reduce((a, r) => a + r.sentBytes, 0))} sent`);
  }
  return parts.join(' | ');
}

/** The plain (non-terminal) line after each unit. */
export function plainLine(s: ProgressSnapshot): string {
  return `[${statusText({ ...s, current: [] })}]`;
}

export interface ProgressOptions {
  /** Draw a bar (stderr is a terminal). */
  tty: boolean;
  /** Where log lines go when there is no bar (and the stream the bar is drawn on). */
  line: (l: string) => void;
  stream?: NodeJS.WritableStream;
  now?: () => number;
}

export class Progress {
  private readonly now: () => number;
  private t0: number;
  private lastDone: number;
  private durations: number[] = [];
  private startupMs = 0;
  private unitsDone = 0;
  private unitsTotal = 0;
  private migrationsDone = 0;
  private migrationsTotal: number | null = null;
  private readonly running = new Map<string, Running>();
  private bars: cliProgress.MultiBar | null = null;
  private bar: cliProgress.SingleBar | null = null;

  constructor(private readonly o: ProgressOptions) {
    this.now = o.now ?? Date.now;
    this.t0 = this.lastDone = this.now();
  }

  /** Starts counting (and, on a terminal, drawing); done units and migrations are those of an earlier invocation. */
  start(c: { unitsTotal: number; unitsDone: number; migrationsTotal: number | null; migrationsDone: number }): void {
    this.unitsTotal = c.unitsTotal;
    this.unitsDone = c.unitsDone;
    this.migrationsTotal = c.migrationsTotal;
    this.migrationsDone = c.migrationsDone;
    if (!this.o.tty || this.bars) return;
    this.bars = new cliProgress.MultiBar({
      stream: this.o.stream ?? process.stderr,
      fps: 4,
      // redraw every tick: a flushed log line overwrites the bar's line
      forceRedraw: true,
      // long log lines wrap as usual; the bar line is cut to the terminal width
      linewrap: true,
      hideCursor: false,
      // the harness's own handlers deal with SIGINT/SIGTERM and call end()
      gracefulExit: false,
      barsize: 12,
      format: (options, params) => `${cliProgress.Format.BarFormat(params.progress, options)} ${statusText(this.snapshot())}`,
    });
    this.bar = this.bars.create(Math.max(1, this.unitsTotal), this.unitsDone);
  }

  snapshot(): ProgressSnapshot {
    const t = this.now();
    return {
      unitsDone: this.unitsDone,
      unitsTotal: this.unitsTotal,
      migrationsDone: this.migrationsDone,
      migrationsTotal: this.migrationsTotal,
      elapsedMs: t - this.t0,
      etaMs: estimateEta({
        elapsedMs: t - this.t0,
        sinceLastMs: t - this.lastDone,
        durations: this.durations,
        startupMs: this.startupMs,
        unitsDone: this.unitsDone,
        unitsTotal: this.unitsTotal,
      }),
      current: [...this.running.values()],
    };
  }

  /** A log line: above the bar on a terminal, else as it is. */
  log(line: string): void {
    if (this.bars) this.bars.log(`${line}\n`);
    else this.o.line(line);
  }

  /** Bytes a migration has sent (and has left), from its progress samples; `ended` once it reached a final state. */
  migrationBytes(id: string, sentBytes: number, o: { remainingBytes?: number | null; ended?: boolean } = {}): void {
    if (o.ended) this.running.delete(id);
    else this.running.set(id, { id, sentBytes, remainingBytes: o.remainingBytes ?? null });
  }

  unitDone(durationMs: number, migrations: number): void {
    this.unitsDone++;
    this.migrationsDone += migrations;
    this.lastDone = this.now();
    if (this.durations.length === 0) this.startupMs = Math.max(0, this.lastDone - this.t0 - durationMs);
    this.durations.push(durationMs);
    this.running.clear();
    if (this.bar) this.bar.update(this.unitsDone);
    else this.o.line(plainLine(this.snapshot()));
  }

  /** Stops drawing: pending log lines are written, the bar stays as its last state. */
  end(): void {
    if (!this.bars) return;
    this.bars.update(); // flushes the log lines MultiBar.stop() would drop
    this.bars.stop();
    this.bars = null;
    this.bar = null;
  }
}
