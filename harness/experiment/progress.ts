/**
 * Progress of a campaign: unit k/N, migrations done, elapsed, ETA from the
 * measured unit durations. On a terminal one status line is redrawn under
 * the log; otherwise every update is a plain line.
 */
export class Progress {
  private t0 = Date.now();
  private durations: number[] = [];
  private status = '';
  constructor(
    private total: number,
    private done: number,
    private readonly tty: boolean,
    private readonly write: (s: string) => void = (s) => process.stderr.write(s),
  ) {}

  migrations = 0;

  log(line: string): void {
    if (this.tty && this.status) this.write('\r\x1b[2K');
    this.write(`${line}\n`);
    if (this.tty && this.status) this.write(this.status);
  }

  unitDone(durationMs: number): void {
    this.done++;
    this.durations.push(durationMs);
    this.update();
  }

  eta(): number | null {
    if (this.durations.length === 0) return null;
    const recent = this.durations.slice(-10);
    return (recent.reduce((a, b) => a + b, 0) / recent.length) * (this.total - this.done);
  }

  line(): string {
    const eta = this.eta();
    return `[unit ${this.done}/${this.total}] ${this.migrations} migrations, elapsed ${fmt(Date.now() - this.t0)}${eta !== null ? `, ETA ${fmt(eta)}` : ''}`;
  }

  update(): void {
    const l = this.line();
    if (this.tty) {
      this.status = l;
      this.write(`\r\x1b[2K${l}`);
    } else this.write(`${l}\n`);
  }

  end(): void {
    if (this.tty && this.status) this.write('\n');
    this.status = '';
  }
}

export function fmt(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
