/**
 * Labels every client sample 'before' | 'during' | 'after' relative to the
 * migration window(s) of a treatment. The integrator tells the clock when a
 * migration starts and ends; collectors ask it for the phase of a sample's
 * own timestamp (the request's send time), so a late reply is still
 * labelled by when it was asked.
 */
export type Phase = 'before' | 'during' | 'after';

export interface MigrationWindow {
  startMs: number;
  /** null while the migration runs. */
  endMs: number | null;
}

/**
 * Migrations of a plan may overlap (parallel, capped): a window is the union
 * of overlapping migrations, open while at least one of them runs.
 */
export class PhaseClock {
  private readonly windows: MigrationWindow[] = [];
  private running = 0;

  /** A migration began at `tMs` (epoch ms, e.g. the migrate command). */
  migrationStarted(tMs: number): void {
    const last = this.windows.at(-1);
    if (this.running > 0 && last) {
      last.startMs = Math.min(last.startMs, tMs);
    } else if (last && last.endMs !== null && tMs <= last.endMs) {
      // began before the previous window's recorded end (clocks of different sources): same window
      last.endMs = null;
    } else {
      this.windows.push({ startMs: tMs, endMs: null });
    }
    this.running++;
  }

  /** One of the running migrations ended at `tMs` (completed, failed or cancelled). */
  migrationEnded(tMs: number): void {
    const open = this.windows.at(-1);
    if (!open || this.running === 0) throw new Error('PhaseClock: migrationEnded without migrationStarted');
    if (tMs < open.startMs) throw new Error('PhaseClock: a migration cannot end before it started');
    this.running--;
    this.lastEnd = Math.max(this.lastEnd ?? tMs, tMs);
    if (this.running === 0) {
      open.endMs = this.lastEnd;
      this.lastEnd = null;
    }
  }

  private lastEnd: number | null = null;

  /**
   * 'during' inside any window (an open window extends to now), 'before'
   * before the first migration, 'after' otherwise (after one migration and
   * before the next counts as 'after' the previous one).
   */
  phaseAt(tMs: number): Phase {
    if (this.windows.length === 0 || tMs < this.windows[0].startMs) return 'before';
    for (const w of this.windows) {
      if (tMs >= w.startMs && (w.endMs === null || tMs <= w.endMs)) return 'during';
    }
    return 'after';
  }

  /** 0-based index of the last migration started at or before `tMs` (-1 before the first). */
  migrationIndexAt(tMs: number): number {
    let k = -1;
    for (let i = 0; i < this.windows.length; i++) if (this.windows[i].startMs <= tMs) k = i;
    return k;
  }

  get migrations(): readonly MigrationWindow[] {
    return this.windows;
  }
}
