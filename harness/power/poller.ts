import { performance } from 'node:perf_hooks';
import type { Sample } from '../store/sample.ts';
import { UserError } from '../util/errors.ts';
import { haveCommand } from '../util/exec.ts';
import { IpmiShell, diagnoseSession, type BmcEndpoint } from './ipmi-shell.ts';
import { parseDcmiPowerReading, parseSensorReading, type ReadingResult } from './ipmi-parse.ts';
import { jitterStats, type JitterStats } from './jitter.ts';

/** What to read on a BMC: a named power sensor (`sensor reading`) or DCMI (`dcmi power reading`, real BMCs). */
export type PowerReadingKind = { kind: 'sensor'; name: string } | { kind: 'dcmi' };

/** One host whose power is polled through its BMC. */
export interface PowerSource extends BmcEndpoint {
  host: string;
  reading: PowerReadingKind;
}

export interface PollerOptions {
  /** Target interval between readings (default 1000 ms). */
  intervalMs?: number;
  /** A reply later than this after its request is a gap 'timeout' (default 0.8 x interval). */
  timeoutMs?: number;
  /** Receives every reading and every gap, in time order per host. */
  onSample: (s: Sample) => void;
  /** Extra tags on every sample (experiment, treatment, ...). */
  tags?: Record<string, string>;
  /** One line per state change of a BMC (lost, back), never per reading. Default: console.error. */
  log?: (msg: string) => void;
  /** Wait before re-opening a session that failed (doubles up to max). Default 1000..10000 ms. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

/** Poller's own figures at the end of a run. */
export interface PollerReport {
  readings: number;
  gaps: number;
  gapsByReason: Record<string, number>;
  /** Per-host intervals between consecutive requests vs target. */
  jitter: JitterStats;
  /** Timer lateness: actual tick start - scheduled tick, ms. */
  tickLateness: JitterStats;
  latency: { p50Ms: number; p99Ms: number; maxMs: number };
}

class BmcState {
  shell: IpmiShell | null = null;
  connecting = false;
  nextConnectAt = 0;
  backoffMs: number;
  /** Last problem reported to the user, so each is said once. */
  reported: string | null = null;
  unavailableReason = 'connecting';
  lastRequestMs: number | null = null;
  constructor(
    readonly src: PowerSource,
    minBackoff: number,
  ) {
    this.backoffMs = minBackoff;
  }
}

/** Wall-clock epoch milliseconds with sub-ms resolution. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Polls the power of N hosts through their BMCs, one long-lived ipmitool
 * shell each, on a fixed schedule (tick k at start + k*interval, so errors do
 * not accumulate). Each reading becomes a Sample {measurement 'power',
 * tags {host}, fields {watts, request_ms, latency_ms}} with t = midpoint of
 * request and reply (request_ms is the request time). A reading not answered
 * within timeoutMs, a BMC still busy from the previous tick, or a BMC without
 * a session is a sample with watts null and a `reason` field: a recorded gap,
 * never an invented value. Session problems (wrong password, unreachable) are
 * logged once per change and the BMC is re-tried with backoff.
 */
export class PowerPoller {
  private readonly interval: number;
  private readonly timeout: number;
  private readonly states: BmcState[];
  private timer: NodeJS.Timeout | null = null;
  private startMs = 0;
  private tick = 0;
  private running = false;
  private readonly intervals: number[] = [];
  private readonly lateness: number[] = [];
  private readonly latencies: number[] = [];
  private readings = 0;
  private gaps = 0;
  private readonly gapsByReason: Record<string, number> = {};
  private readonly log: (msg: string) => void;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    sources: readonly PowerSource[],
    private readonly opts: PollerOptions,
  ) {
    this.interval = opts.intervalMs ?? 1000;
    this.timeout = opts.timeoutMs ?? this.interval * 0.8;
    this.log = opts.log ?? ((m) => console.error(m));
    const seen = new Set<string>();
    for (const s of sources) {
      if (seen.has(s.host)) throw new UserError(`power: host '${s.host}' listed twice`);
      seen.add(s.host);
      if (s.reading.kind === 'sensor' && /["\n\r]/.test(s.reading.name)) {
        throw new UserError(`power: sensor name for host '${s.host}' must not contain quotes or newlines`);
      }
    }
    this.states = sources.map((s) => new BmcState(s, opts.reconnectMinMs ?? 1000));
  }

  /** Opens the sessions (in parallel) and starts ticking; the first tick is one interval after the sessions are tried. */
  async start(): Promise<void> {
    if (!(await haveCommand('ipmitool')))
      throw new UserError("required program 'ipmitool' was not found on PATH; install it with: apt-get install ipmitool");
    this.running = true;
    await Promise.all(this.states.map((st) => this.connect(st)));
    this.startMs = nowMs();
    this.schedule();
  }

  /** Stops ticking, waits for outstanding readings, closes the sessions, and reports. */
  async stop(): Promise<PollerReport> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await Promise.allSettled([...this.inflight]);
    await Promise.all(this.states.map((st) => st.shell?.close()));
    return this.report();
  }

  /** PIDs of the ipmitool processes (to account their CPU). */
  childPids(): number[] {
    return this.states.map((s) => s.shell?.pid).filter((p): p is number => p !== undefined);
  }

  report(): PollerReport {
    const lat = [...this.latencies].sort((a, b) => a - b);
    const j = jitterStats(lat, 0);
    return {
      readings: this.readings,
      gaps: this.gaps,
      gapsByReason: { ...this.gapsByReason },
      jitter: jitterStats(this.intervals, this.interval),
      tickLateness: jitterStats(this.lateness, 0),
      latency: { p50Ms: j.p50Ms, p99Ms: j.p99Ms, maxMs: lat.length ? lat[lat.length - 1] : NaN },
    };
  }

  private schedule(): void {
    if (!this.running) return;
    this.tick += 1;
    let due = this.startMs + this.tick * this.interval;
    // Slots that passed while the event loop was stalled are gaps, not readings bunched together later.
    while (due < nowMs() - this.interval / 2) {
      for (const st of this.states) this.emitGap(st.src.host, due, 'missed-tick');
      this.tick += 1;
      due = this.startMs + this.tick * this.interval;
    }
    this.timer = setTimeout(() => this.onTick(due), Math.max(0, due - nowMs()));
  }

  private onTick(due: number): void {
    if (!this.running) return;
    const t = nowMs();
    this.lateness.push(t - due);
    for (const st of this.states) {
      const p = this.poll(st, due);
      this.inflight.add(p);
      void p.finally(() => this.inflight.delete(p));
    }
    this.schedule();
  }

  private async poll(st: BmcState, due: number): Promise<void> {
    const host = st.src.host;
    const shell = st.shell;
    if (!shell || !shell.alive) {
      this.emitGap(host, due, st.unavailableReason);
      if (!st.connecting && nowMs() >= st.nextConnectAt) void this.connect(st);
      return;
    }
    if (shell.inFlight > 0) {
      this.emitGap(host, due, 'busy');
      return;
    }
    const req = nowMs();
    if (st.lastRequestMs !== null) this.intervals.push(req - st.lastRequestMs);
    st.lastRequestMs = req;
    const cmd = st.src.reading.kind === 'dcmi' ? 'dcmi power reading' : `sensor reading "${st.src.reading.name}"`;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), this.timeout)));
    let answer: string | 'timeout';
    try {
      answer = await Promise.race([shell.command(cmd), timedOut]);
    } catch (e) {
      clearTimeout(timer);
      this.emitGap(host, req, 'session-lost');
      this.lost(st, (e as Error).message);
      return;
    }
    clearTimeout(timer);
    const rep = nowMs();
    if (answer === 'timeout') {
      this.emitGap(host, req, 'timeout', rep - req);
      return;
    }
    const r: ReadingResult = st.src.reading.kind === 'dcmi' ? parseDcmiPowerReading(answer) : parseSensorReading(answer);
    if (!r.ok) {
      this.emitGap(host, req, r.reason, rep - req);
      this.reportOnce(
        st,
        `power: BMC of ${host} (${st.src.address}:${st.src.port ?? 623}) gives no reading: ${r.reason}` +
          (r.reason === 'sensor-not-found' ? `; check the sensor name with: ipmitool ... sdr list` : '') +
          (r.reason === 'dcmi-unsupported' ? `; use a named power sensor instead (see: ipmitool ... sdr list)` : ''),
      );
      return;
    }
    if (st.reported !== null) {
      this.log(`power: BMC of ${host} answers again`);
      st.reported = null;
    }
    this.readings += 1;
    this.latencies.push(rep - req);
    this.emit({
      t: new Date((req + rep) / 2).toISOString(),
      measurement: 'power',
      tags: { ...this.opts.tags, host },
      fields: { watts: r.watts, request_ms: round3(req), latency_ms: round3(rep - req) },
    });
  }

  private emitGap(host: string, tMs: number, reason: string, latency?: number): void {
    this.gaps += 1;
    this.gapsByReason[reason] = (this.gapsByReason[reason] ?? 0) + 1;
    this.emit({
      t: new Date(tMs).toISOString(),
      measurement: 'power',
      tags: { ...this.opts.tags, host },
      fields: { watts: null, reason, request_ms: round3(tMs), latency_ms: latency === undefined ? null : round3(latency) },
    });
  }

  private emitFailing = false;

  /**
   * Runs in timer callbacks: a failing sink (e.g. disk full) is logged once per episode instead
   * of becoming an uncaught exception that would end the run without its cleanup.
   */
  private emit(sample: Sample): void {
    try {
      this.opts.onSample(sample);
      if (this.emitFailing) this.log('power: samples are recorded again');
      this.emitFailing = false;
    } catch (e) {
      if (!this.emitFailing) this.log(`power: samples not recorded (${e instanceof Error ? e.message : String(e)}); polling goes on`);
      this.emitFailing = true;
    }
  }

  private reportOnce(st: BmcState, msg: string): void {
    if (st.reported === msg) return;
    st.reported = msg;
    this.log(msg);
  }

  private lost(st: BmcState, why: string): void {
    st.shell = null;
    st.unavailableReason = 'session-lost';
    st.nextConnectAt = nowMs() + st.backoffMs;
    void why;
  }

  private async connect(st: BmcState): Promise<void> {
    st.connecting = true;
    const shell = new IpmiShell(st.src);
    try {
      await shell.start();
      st.shell = shell;
      st.backoffMs = this.opts.reconnectMinMs ?? 1000;
      st.unavailableReason = 'session-lost';
    } catch {
      await shell.close();
      const d = await diagnoseSession(st.src).catch((e) => ({ kind: 'other' as const, detail: String(e) }));
      st.unavailableReason = d.kind === 'other' ? 'no-session' : d.kind;
      const where = `${st.src.address}:${st.src.port ?? 623}`;
      const advice = {
        'wrong-password': `wrong BMC password for user '${st.src.credentials.user}'; set MIGBENCH_BMC_PASSWORD or the secrets file`,
        'unknown-user': `BMC does not know user '${st.src.credentials.user}'; set MIGBENCH_BMC_USER or the secrets file`,
        unreachable: 'BMC does not answer; check its address/port and that it is powered and reachable',
        other: `cannot open an IPMI session (${d.detail})`,
      }[d.kind];
      this.reportOnce(st, `power: host ${st.src.host} BMC ${where}: ${advice}; readings are recorded as gaps until it answers`);
      st.nextConnectAt = nowMs() + st.backoffMs;
      st.backoffMs = Math.min(st.backoffMs * 2, this.opts.reconnectMaxMs ?? 10_000);
    } finally {
      st.connecting = false;
    }
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
