/**
 * The runner's own clock for what happens between migrations: each span
 * (see TIMING_KINDS) goes to timing.jsonl as it ends, so a killed run keeps
 * what it measured. Control code only times; duty-cycle.ts derives.
 */
import type { TimingKind, TimingLine } from '../store/schema/index.ts';

export interface SpanContext {
  treatment?: string | null;
  rep?: number | null;
  vm?: string | null;
}

export class SpanClock {
  readonly lines: TimingLine[] = [];
  constructor(private readonly sink: (l: TimingLine) => void = () => undefined) {}

  /** Records a span that ran from `start` to now (or `end`). */
  add(kind: TimingKind, start: number, ctx: SpanContext = {}, end = Date.now()): void {
    const l: TimingLine = {
      kind,
      treatment: ctx.treatment ?? null,
      rep: ctx.rep ?? null,
      vm: ctx.vm ?? null,
      start_ms: start,
      end_ms: end,
    };
    this.lines.push(l);
    try {
      this.sink(l);
    } catch {
      // a timing line that cannot be written (disk full) costs the breakdown, never the campaign
    }
  }

  /** Runs `f` and records its span, also when it throws. */
  async time<T>(kind: TimingKind, f: () => Promise<T> | T, ctx: SpanContext = {}): Promise<T> {
    const start = Date.now();
    try {
      return await f();
    } finally {
      this.add(kind, start, ctx);
    }
  }
}

/**
 * A migration step (migrateVm) as two spans: before its migrate command
 * (prepare) and from the command on (wrapup; the duty cycle counts only
 * its part after the migration window). A step without a command is all prepare.
 */
export function addMigrationStep(clock: SpanClock, stepStart: number, tCmd: string | null, ctx: SpanContext, stepEnd = Date.now()): void {
  const cmd = tCmd ? Date.parse(tCmd) : NaN;
  if (!Number.isFinite(cmd) || cmd < stepStart || cmd > stepEnd) {
    clock.add('migrate-prepare', stepStart, ctx, stepEnd);
    return;
  }
  clock.add('migrate-prepare', stepStart, ctx, cmd);
  clock.add('migrate-wrapup', cmd, ctx, stepEnd);
}
