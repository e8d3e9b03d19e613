import type { ChildProcess } from 'node:child_process';
import { spawnChild } from '../util/exec.ts';
import { createInterface } from 'node:readline';
import { parseProbeLine, probeArgs, probePath, type ProbeRecord } from '../native/programs.ts';
import type { Sample } from '../store/sample.ts';
import { iso } from '../experiment/rundir.ts';
import { errorMessage } from '../util/errors.ts';
import { endProcess, ownProcess, type OwnedProcess } from '../util/procs.ts';
import { safeInterval } from '../util/timers.ts';

/**
 * A fixed-rate ICMP probe from the client namespace to a guest, running for
 * the whole treatment. Records stay in memory (for outage computation per
 * migration) and are handed to `onSamples` in batches for the run directory.
 */
export class ProbeStream {
  readonly records: ProbeRecord[] = [];
  /** Every seq below this has a record (replies and timeouts arrive out of order). */
  private contiguous = 0;
  private seen = new Set<number>();
  private child: ChildProcess | null = null;
  private owned: OwnedProcess | null = null;
  private waiters: Array<{ pred: (r: ProbeRecord) => boolean; resolve: (r: ProbeRecord) => void }> = [];
  private pending: Sample[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private exited: Promise<void> = Promise.resolve();
  /** Last error of handing samples to `onSamples` (e.g. disk full); null once a flush succeeds again. */
  failure: unknown = null;

  /**
   * `onError` hears when samples could not be handed over (they stay queued and are retried
   * on the next flush); default: one line on stderr per new failure.
   */
  constructor(
    readonly ns: string,
    readonly target: string,
    readonly intervalMs: number,
    private tags: Record<string, string>,
    private onSamples: (s: Sample[]) => void,
    private onError: (e: unknown) => void = (e) =>
      process.stderr.write(`probe to ${target}: samples not recorded yet (${errorMessage(e)}); kept in memory and retried\n`),
  ) {}

  async start(): Promise<void> {
    const bin = await probePath();
    const args = [
      'netns',
      'exec',
      this.ns,
      bin,
      ...probeArgs({ target: this.target, intervalMs: this.intervalMs, rt: true, timeoutMs: 1000 }),
    ];
    const child = spawnChild('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.owned = ownProcess(child.pid!, 'probe');
    this.exited = new Promise((r) => child.once('exit', () => r()));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const rec = parseProbeLine(line);
      if (!rec) return;
      this.records.push(rec);
      this.seen.add(rec.seq);
      while (this.seen.has(this.contiguous)) this.seen.delete(this.contiguous++);
      this.pending.push({
        t: iso(rec.sentUs / 1000)!,
        measurement: 'probe',
        tags: this.tags,
        fields: {
          seq: rec.seq,
          sent_us: rec.sentUs,
          recv_us: rec.recvUs,
          rtt_ms: rec.recvUs === null ? null : (rec.recvUs - rec.sentUs) / 1000,
        },
      });
      for (const w of [...this.waiters]) {
        if (w.pred(rec)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(rec);
        }
      }
    });
    this.flushTimer = safeInterval(
      () => this.flush(),
      1000,
      (e) => {
        if (this.failure === null) this.onError(e); // once per failure episode, not every second
        this.failure = e;
      },
    );
    // the probe is useful only once the guest answers: wait for the first reply
    await this.waitFor((r) => r.recvUs !== null, 30_000, `first probe reply from ${this.target}`).catch((e) => {
      throw new Error(`${(e as Error).message}${stderr ? `; mb-probe said: ${stderr.trim()}` : ''}`);
    });
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

  /** Resolves once every probe up to `seq` has its outcome (reply or timeout). */
  async settled(seq: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.contiguous <= seq) {
      if (Date.now() > deadline) throw new Error(`probe results up to #${seq} not complete after ${timeoutMs} ms`);
      await this.waitFor((r) => r.seq > seq + 1 || this.contiguous > seq, Math.max(1, deadline - Date.now()), 'probe results').catch(
        () => undefined,
      );
      if (this.contiguous <= seq) await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Retags later samples (e.g. with the current migration id). */
  setTags(tags: Record<string, string>): void {
    this.flush();
    this.tags = tags;
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
    if (this.owned) await endProcess(this.owned, 3000);
    await this.exited;
    this.flush();
  }
}
