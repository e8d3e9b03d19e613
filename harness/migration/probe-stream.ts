import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { spawnChild } from '../util/exec.ts';
import { createInterface } from 'node:readline';
import {
  cpuMsFromStat,
  parseProbeLine,
  parseProbeSummary,
  probeArgs,
  probeLoss,
  probePath,
  type ProbeLoss,
  type ProbeRecord,
  type ProbeSummary,
  type TimeWindowUs,
} from '../native/programs.ts';
import type { Sample } from '../store/sample.ts';
import { iso } from '../experiment/rundir.ts';
import { errorMessage } from '../util/errors.ts';
import { endProcess, isSameProcess, ownProcess, type OwnedProcess } from '../util/procs.ts';
import type { LaunchedProcess, Launcher } from '../driver/launch.ts';
import type { Readable } from 'node:stream';
import { sleep } from '../util/time.ts';
import { safeInterval, within } from '../util/timers.ts';
import { pendingSeqs, settleGraceMs } from './outage-settle.ts';

export interface ProbeStreamOptions {
  /**
   * Steady-state `probe` samples at most this often (default 10 ms): at 1 ms every 10th probe is
   * written, so a 1 ms probe writes no more than a 10 ms one; at 10 ms and coarser every probe is.
   */
  sampleEveryMs?: number;
  /** Every probe within this long of a lost one is written (default 100 ms), so outages re-derive exactly. */
  lossContextMs?: number;
  /** A `probe_stats` sample (counts, RTT, the probe's own CPU) this often (default 10 s). */
  statsEveryMs?: number;
}

/** Records older than this before a migration starts are no longer read by its derivation. */
const KEEP_BEFORE_MIGRATION_MS = 5000;

interface PeriodStats {
  sent: number;
  answered: number;
  lost: number;
  written: number;
  rttMin: number;
  rttMax: number;
  rttSum: number;
}

const emptyPeriod = (): PeriodStats => ({ sent: 0, answered: 0, lost: 0, written: 0, rttMin: Infinity, rttMax: -Infinity, rttSum: 0 });

/**
 * A fixed-rate ICMP probe from the client namespace to a guest, running for
 * the whole treatment. Every record stays in memory (for outage computation
 * per migration); the run directory gets `probe` samples thinned to at most
 * one per `sampleEveryMs`, except that every lost probe and every probe
 * within `lossContextMs` of one is written, so outages (and the first reply
 * after RESUME) re-derive from the samples exactly. `probe_stats` samples
 * carry what thinning leaves out (counts, RTT min/mean/max) and the probe's
 * own CPU use; `probe_summary` closes the stream with mb-probe's totals.
 */
export class ProbeStream {
  readonly records: ProbeRecord[] = [];
  /** Every seq below this has a record (replies and timeouts arrive out of order). */
  private contiguous = 0;
  private seen = new Set<number>();
  private child: ChildProcess | null = null;
  private owned: OwnedProcess | null = null;
  private launched: LaunchedProcess | null = null;
  private waiters: Array<{ pred: (r: ProbeRecord) => boolean; resolve: (r: ProbeRecord) => void }> = [];
  private pending: Sample[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private exited: Promise<void> = Promise.resolve();
  private stderr = '';
  /** Records not yet written or skipped, with the tags of their probe (tagsOf); decided in seq order. */
  private undecided = new Map<number, { r: ProbeRecord; tags: Record<string, string> }>();
  /**
   * Tags by seq: each setTags applies from the probe after the highest seq seen then, so a timeout record that
   * arrives after the next migration started keeps the tags of the migration its probe was sent in.
   */
  private tagEpochs: Array<{ fromSeq: number; tags: Record<string, string> }> = [];
  private maxSeq = -1;
  private maxAnswered = false;
  private lastAddMs = 0;
  /** Seqs taken as lost at a settle point and not confirmed by their timeout record yet. */
  private inferredLost = new Set<number>();
  /** Probes taken as lost at settle points, and those of them answered after all (contradicting the FIFO argument). */
  inference = { inferred: 0, answered: 0 };
  private nextDecide = 0;
  /** Seq ranges around lost probes: written in full. */
  private keepRanges: Array<[number, number]> = [];
  private period = emptyPeriod();
  private readonly stride: number;
  private readonly context: number;
  private readonly statsEveryMs: number;
  private startWallMs = 0;
  private lastStats = { wallMs: 0, cpuMs: 0 };
  /** Migration windows (harness clock, µs) and the loss counts of records no longer kept. */
  private windows: TimeWindowUs[] = [];
  private folded: ProbeLoss = { sent: 0, lost: 0 };
  /** mb-probe's own totals, once it has exited. */
  summary: ProbeSummary | null = null;
  /** Last error of handing samples to `onSamples` (e.g. disk full); null once a flush succeeds again. */
  failure: unknown = null;

  /**
   * `onError` hears when samples could not be handed over (they stay queued and are retried
   * on the next flush); default: one line on stderr per new failure.
   */
  constructor(
    /** Where mb-probe runs: a network namespace of this machine, or a launcher (the ssh driver's client host). */
    readonly ns: string | Launcher,
    readonly target: string,
    readonly intervalMs: number,
    private tags: Record<string, string>,
    private onSamples: (s: Sample[]) => void,
    private onError: (e: unknown) => void = (e) =>
      process.stderr.write(`probe to ${target}: samples not recorded yet (${errorMessage(e)}); kept in memory and retried\n`),
    opts: ProbeStreamOptions = {},
  ) {
    this.stride = Math.max(1, Math.round((opts.sampleEveryMs ?? 10) / intervalMs));
    this.context = Math.ceil((opts.lossContextMs ?? 100) / intervalMs);
    this.statsEveryMs = opts.statsEveryMs ?? 10_000;
  }

  async start(): Promise<void> {
    if (typeof this.ns !== 'string') return this.startVia(this.ns);
    const bin = await probePath();
    const args = [
      'netns',
      'exec',
      this.ns,
      bin,
      ...probeArgs({ target: this.target, intervalMs: this.intervalMs, rt: true, timeoutMs: 1000 }),
    ];
    // `ip netns exec` execs the probe in place: the child's pid is mb-probe's (its /proc/<pid>/stat is the probe's CPU)
    const child = spawnChild('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.owned = ownProcess(child.pid!, 'probe');
    await this.follow(child.stdout!, child.stderr!, new Promise((r) => child.once('exit', () => r())));
  }

  /** The probe started by a launcher (e.g. on the inventory's client host over SSH): no local PID, its CPU from its own summary. */
  private async startVia(launcher: Launcher): Promise<void> {
    const argv = [
      ...(await launcher.program('mb-probe')),
      ...probeArgs({ target: this.target, intervalMs: this.intervalMs, rt: true, timeoutMs: 1000 }),
    ];
    const p = await launcher.spawn(argv, { tag: `probe to ${this.target}` });
    this.launched = p;
    await this.follow(
      p.stdout,
      p.stderr,
      p.done.then(() => undefined),
    );
  }

  /** Reads mb-probe's records and stderr, flushes samples every second, waits for the guest's first reply. */
  private async follow(stdout: Readable, stderr: Readable, exited: Promise<void>): Promise<void> {
    this.startWallMs = Date.now();
    this.lastStats = { wallMs: this.startWallMs, cpuMs: 0 };
    this.exited = exited;
    stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    createInterface({ input: stdout }).on('line', (line) => {
      const rec = parseProbeLine(line);
      if (rec) this.add(rec);
    });
    this.flushTimer = safeInterval(
      () => {
        if (Date.now() - this.lastStats.wallMs >= this.statsEveryMs) this.emitStats();
        this.flush();
      },
      1000,
      (e) => {
        if (this.failure === null) this.onError(e); // once per failure episode, not every second
        this.failure = e;
      },
    );
    await this.firstReply();
  }

  private async firstReply(): Promise<void> {
    // the probe is useful only once the guest answers: wait for the first reply
    const first = await this.waitFor((r) => r.recvUs !== null, 30_000, `first probe reply from ${this.target}`).catch((e) => {
      throw new Error(`${(e as Error).message}${this.stderr ? `; mb-probe said: ${this.stderr.trim()}` : ''}`);
    });
    // probes before the guest first answered are not the probe's own loss
    this.windows.push({ fromUs: 0, toUs: first.sentUs });
  }

  /** Takes one record of mb-probe (exposed for tests: the process is the only other caller). */
  add(rec: ProbeRecord): void {
    this.records.push(rec);
    this.seen.add(rec.seq);
    if (rec.seq > this.maxSeq) [this.maxSeq, this.maxAnswered] = [rec.seq, rec.recvUs !== null];
    this.lastAddMs = Date.now();
    while (this.seen.has(this.contiguous)) this.seen.delete(this.contiguous++);
    const tags = this.tagsOf(rec.seq);
    this.undecided.set(rec.seq, { r: rec, tags });
    if (this.inferredLost.delete(rec.seq) && rec.recvUs !== null) this.contradicted(rec, tags);
    if (rec.recvUs === null) {
      const from = rec.seq - this.context;
      const last = this.keepRanges.at(-1);
      if (last && from <= last[1] + 1) last[1] = Math.max(last[1], rec.seq + this.context);
      else this.keepRanges.push([from, rec.seq + this.context]);
    }
    this.decide(false);
    for (const w of [...this.waiters]) {
      if (w.pred(rec)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(rec);
      }
    }
  }

  /**
   * Writes or skips records in seq order, once everything up to `context` probes after them is
   * known (so a loss just after a record can still claim it); `final` decides all that is left.
   */
  private decide(final: boolean): void {
    for (;;) {
      const s = this.nextDecide;
      if (final ? this.undecided.size === 0 : s + this.context >= this.contiguous) return;
      this.nextDecide++;
      const u = this.undecided.get(s);
      if (!u) continue; // never reported (the probe was killed)
      this.undecided.delete(s);
      while (this.tagEpochs.length > 1 && this.tagEpochs[1].fromSeq <= s) this.tagEpochs.shift();
      const { r, tags } = u;
      const p = this.period;
      p.sent++;
      if (r.recvUs === null) p.lost++;
      else {
        const rtt = (r.recvUs - r.sentUs) / 1000;
        p.answered++;
        p.rttSum += rtt;
        p.rttMin = Math.min(p.rttMin, rtt);
        p.rttMax = Math.max(p.rttMax, rtt);
      }
      while (this.keepRanges.length && this.keepRanges[0][1] < s) this.keepRanges.shift();
      const nearLoss = this.keepRanges.length > 0 && this.keepRanges[0][0] <= s;
      if (s % this.stride !== 0 && r.recvUs !== null && !nearLoss) continue;
      p.written++;
      this.pending.push({
        t: iso(r.sentUs / 1000)!,
        measurement: 'probe',
        tags,
        fields: {
          seq: r.seq,
          sent_us: r.sentUs,
          recv_us: r.recvUs,
          rtt_ms: r.recvUs === null ? null : (r.recvUs - r.sentUs) / 1000,
        },
      });
    }
  }

  /**
   * After the stop signal mb-probe waits out the timeout of every probe still outstanding; when the only ones
   * left are probes a settle point already took as lost (the last migration's downtime), a second signal has it
   * report them lost at once. Sent once nothing else is outstanding and no record came for a grace period.
   */
  private async hurry(secondSignal: () => unknown): Promise<void> {
    let done = false;
    void this.exited.then(() => (done = true));
    const grace = settleGraceMs(this.intervalMs);
    const start = Date.now();
    while (!done && this.inferredLost.size > 0 && Date.now() - start < 3000) {
      await sleep(10);
      const outstanding = pendingSeqs(this.contiguous, this.maxSeq, (q) => this.seen.has(q) || this.inferredLost.has(q));
      if (done || outstanding.length > 0 || Date.now() - Math.max(start, this.lastAddMs) < grace) continue;
      if (!this.maxAnswered) continue; // FIFO: a reply to the newest probe says every older one has its outcome
      await Promise.resolve(secondSignal()).catch(() => undefined);
      return;
    }
  }

  /** CPU time (ms) mb-probe has used since it started; null once it is gone or unreadable. */
  cpuMs(): number | null {
    if (!this.owned) return null;
    try {
      return cpuMsFromStat(readFileSync(`/proc/${this.owned.pid}/stat`, 'utf8'));
    } catch {
      return null;
    }
  }

  /** The probe's mean CPU share of one core (%) since it started. */
  cpuPct(): number | null {
    const cpu = this.summaryCpuMs() ?? this.cpuMs();
    const wall = Date.now() - this.startWallMs;
    return cpu === null || wall <= 0 ? null : (100 * cpu) / wall;
  }

  private summaryCpuMs(): number | null {
    const s = this.summary;
    return s && s.cpu_user_us !== undefined && s.cpu_sys_us !== undefined ? (s.cpu_user_us + s.cpu_sys_us) / 1000 : null;
  }

  /** A `probe_stats` sample over the records decided since the last one, with the probe's CPU over that time. */
  private emitStats(cpuNowMs: number | null = this.cpuMs()): void {
    const p = this.period;
    const now = Date.now();
    const wall = now - this.lastStats.wallMs;
    const cpu = cpuNowMs === null ? null : cpuNowMs - this.lastStats.cpuMs;
    this.pending.push({
      t: iso(now)!,
      measurement: 'probe_stats',
      tags: this.tags,
      fields: {
        interval_ms: this.intervalMs,
        sample_every: this.stride,
        sent: p.sent,
        answered: p.answered,
        lost: p.lost,
        written: p.written,
        rtt_min_ms: p.answered ? p.rttMin : null,
        rtt_mean_ms: p.answered ? p.rttSum / p.answered : null,
        rtt_max_ms: p.answered ? p.rttMax : null,
        period_ms: wall,
        cpu_ms: cpu,
        cpu_pct: cpu === null || wall <= 0 ? null : (100 * cpu) / wall,
      },
    });
    this.period = emptyPeriod();
    this.lastStats = { wallMs: now, cpuMs: cpuNowMs ?? this.lastStats.cpuMs };
  }

  /** Resolves with the first record (already seen or future) matching `pred`. */
  waitFor(pred: (r: ProbeRecord) => boolean, timeoutMs: number, what: string): Promise<ProbeRecord> {
    const hit = this.records.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (r: ProbeRecord) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /**
   * The outcome of every probe before `first` (a reply to a probe sent after RESUME, already read), a short
   * grace after it: probes before it still without a record are lost (FIFO, see outage-settle.ts), without
   * waiting out mb-probe's 1 s timeout for them. Returns their seqs, for the observation (probePending). A reply
   * that still arrives for one of them is recorded as a contradiction (probe_inference sample, stderr line).
   */
  async settle(first: ProbeRecord, graceMs = settleGraceMs(this.intervalMs)): Promise<number[]> {
    await sleep(graceMs);
    const pending = pendingSeqs(this.contiguous, first.seq, (q) => q < this.contiguous || this.seen.has(q));
    for (const q of pending) this.inferredLost.add(q);
    this.inference.inferred += pending.length;
    return pending;
  }

  private contradicted(rec: ProbeRecord, tags: Record<string, string>): void {
    this.inference.answered++;
    const note = `probe #${rec.seq} to ${this.target} was taken as lost at the settle point but answered after all`;
    process.stderr.write(`${note}; the migration's observed downtime assumed it lost\n`);
    this.pending.push({
      t: iso(rec.sentUs / 1000)!,
      measurement: 'probe_inference',
      tags,
      fields: { seq: rec.seq, sent_us: rec.sentUs, recv_us: rec.recvUs, note },
    });
  }

  /** The tags of the migration (if any) probe `seq` was sent in. */
  private tagsOf(seq: number): Record<string, string> {
    for (let i = this.tagEpochs.length - 1; i >= 0; i--) if (this.tagEpochs[i].fromSeq <= seq) return this.tagEpochs[i].tags;
    return this.tags;
  }

  /**
   * Retags the samples of later probes (seqs above the highest seen now) with the current migration id.
   * migrate.ts calls this as a migration starts: records sent more than 5 s before are then no longer needed by any derivation
   * (it reads from the last reply before its command on), so they leave memory, their loss
   * counts folded into `lossOutside` first. A 1 ms probe keeps ~1000 records a second.
   */
  setTags(tags: Record<string, string>): void {
    this.flush();
    if (this.tagEpochs.length === 0) this.tagEpochs.push({ fromSeq: 0, tags: this.tags });
    this.tagEpochs.push({ fromSeq: this.maxSeq + 1, tags });
    this.tags = tags;
    this.forgetBefore(Date.now() - KEEP_BEFORE_MIGRATION_MS);
  }

  /** Drops records before the last reply sent before `tMs` (that one stays, so no loss run is cut). */
  forgetBefore(tMs: number): void {
    let boundary: ProbeRecord | null = null;
    for (const r of this.records) if (r.recvUs !== null && r.sentUs < tMs * 1000 && (!boundary || r.seq > boundary.seq)) boundary = r;
    if (!boundary) return;
    const b = boundary.seq;
    const gone = probeLoss(this.records, this.intervalMs, this.windows, b);
    this.folded = { sent: this.folded.sent + gone.sent, lost: this.folded.lost + gone.lost };
    let w = 0;
    for (const r of this.records) if (r.seq >= b) this.records[w++] = r;
    this.records.length = w;
  }

  /** A migration ran from `fromMs` to `toMs` (harness clock): losses overlapping it are downtime, not the probe's own. */
  markMigration(fromMs: number, toMs: number): void {
    this.windows.push({ fromUs: fromMs * 1000, toUs: toMs * 1000 });
  }

  /** Probes sent, and lost, outside every marked migration so far (those with an outcome). */
  lossOutside(): ProbeLoss {
    const now = probeLoss(this.records, this.intervalMs, this.windows);
    return { sent: this.folded.sent + now.sent, lost: this.folded.lost + now.lost };
  }

  /** Hands queued samples over; if that throws, they stay queued (in order) for the next flush. */
  flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      this.onSamples(batch);
      this.failure = null;
    } catch (e) {
      this.pending = batch.concat(this.pending);
      throw e;
    }
  }

  async stop(): Promise<void> {
    if (this.flushTimer) clearInterval(this.flushTimer);
    const cpuBefore = this.cpuMs();
    const owned = this.owned;
    if (owned) await Promise.all([endProcess(owned, 3000), this.hurry(() => isSameProcess(owned) && process.kill(owned.pid, 'SIGTERM'))]);
    // SIGINT: mb-probe prints its summary (sent, lost, CPU) on stderr as it ends
    const launched = this.launched;
    if (launched)
      await launched.signal('SIGINT').then(() => Promise.all([within(this.exited, 3000), this.hurry(() => launched.signal('SIGINT'))]));
    if (this.launched) await this.launched.stop(3000);
    await this.exited;
    this.decide(true);
    this.summary = parseProbeSummary(this.stderr);
    const cpu = this.summaryCpuMs() ?? cpuBefore;
    if (this.owned || this.launched || this.period.sent > 0) this.emitStats(cpu);
    if (this.owned || this.launched) {
      const wall = Date.now() - this.startWallMs;
      const outside = this.lossOutside();
      this.pending.push({
        t: iso(Date.now())!,
        measurement: 'probe_summary',
        tags: this.tags,
        fields: {
          interval_ms: this.intervalMs,
          duration_ms: wall,
          sent: this.summary?.sent ?? null,
          received: this.summary?.received ?? null,
          lost: this.summary?.lost ?? null,
          late_replies: this.summary?.late_replies ?? null,
          skipped_slots: this.summary?.skipped_slots ?? null,
          send_errors: this.summary?.send_errors ?? null,
          cpu_ms: cpu,
          cpu_pct: cpu === null || wall <= 0 ? null : (100 * cpu) / wall,
          lost_outside_migrations: outside.lost,
          sent_outside_migrations: outside.sent,
          inferred_lost: this.inference.inferred,
          inferred_lost_answered: this.inference.answered,
        },
      });
    }
    this.flush();
  }
}

/** The probe facts a migration record carries (see MigrationRecordSchema). */
export interface ProbeFacts {
  probe_outside?: ProbeLoss | null;
  probe_cpu_pct?: number | null;
}

/**
 * Once a migration's record is made (the guest answered again or the migration failed): marks
 * the time from its command to now as a migration of the probe's VM, and puts the probe's own
 * loss outside migrations so far and its CPU share into the record, for the flags to check.
 */
export function recordProbeFacts(probe: ProbeStream | null | undefined, record: ProbeFacts & { t_cmd: string | null }): void {
  if (!probe) return;
  if (record.t_cmd) probe.markMigration(Date.parse(record.t_cmd), Date.now());
  record.probe_outside = probe.lossOutside();
  record.probe_cpu_pct = probe.cpuPct();
}
