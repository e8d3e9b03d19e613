import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InfluxDB, type IPoint } from 'influx';
import { UserError, errorMessage } from '../util/errors.ts';
import { redactInText, redactUrl } from '../util/redact.ts';
import { readJsonl } from './jsonl.ts';
import type { Sample } from './sample.ts';
import { InfluxDiskBuffer } from './influx-buffer.ts';

/**
 * Where to write: `http://host:port/<database>` (database default 'migbench').
 * The login comes from MIGBENCH_INFLUX_USER / MIGBENCH_INFLUX_PASSWORD (preferred: a URL
 * on the command line is visible in `ps`) or, if given, from `user:password@` in the URL.
 * Either way it is never stored or printed: see `redactUrl`.
 */
export interface InfluxTarget {
  protocol: 'http' | 'https';
  host: string;
  port: number;
  database: string;
  username?: string;
  password?: string;
}

export function parseInfluxUrl(url: string): InfluxTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`--influx: '${redactUrl(url)}' is not a URL; expected e.g. http://127.0.0.1:8086/migbench`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new UserError(`--influx: '${redactUrl(url)}' must start with http:// or https://`);
  const db = decodeURIComponent(u.pathname.replace(/^\/+|\/+$/g, '')) || 'migbench';
  if (!/^[A-Za-z0-9_-]+$/.test(db)) throw new UserError(`--influx: database name '${db}' may only contain letters, digits, _ and -`);
  return {
    protocol: u.protocol === 'https:' ? 'https' : 'http',
    host: u.hostname,
    port: u.port ? Number(u.port) : 8086,
    database: db,
    username: u.username ? decodeURIComponent(u.username) : process.env.MIGBENCH_INFLUX_USER,
    password: u.password ? decodeURIComponent(u.password) : process.env.MIGBENCH_INFLUX_PASSWORD,
  };
}

/** The URL without credentials, for messages and the manifest. */
export function shown(t: InfluxTarget): string {
  return `${t.protocol}://${t.host}:${t.port}/${t.database}`;
}

/** Epoch microseconds of an ISO-8601 timestamp, keeping digits beyond the millisecond. */
export function isoToMicros(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`invalid sample timestamp '${iso}'`);
  const frac = /\.(\d+)/.exec(iso)?.[1] ?? '';
  const extra = Number((frac.slice(3, 6) || '0').padEnd(3, '0'));
  return String(ms * 1000 + extra);
}

/**
 * Sample -> InfluxDB point. Tags stay tags (low-cardinality ids); fields keep
 * their values, null fields are left out (InfluxDB has no null). The timestamp
 * is explicit (µs), so points of one batch never overwrite each other and a
 * re-sent point overwrites itself: InfluxDB keeps one point per
 * measurement + tag set + timestamp, which is what makes retries idempotent.
 */
export function sampleToPoint(s: Sample): IPoint {
  const fields: Record<string, number | string | boolean> = {};
  const nulls: string[] = [];
  for (const [k, v] of Object.entries(s.fields)) {
    if (v === null || (typeof v === 'number' && !Number.isFinite(v))) nulls.push(k);
    else fields[k] = v;
  }
  if (Object.keys(fields).length === 0) fields.null_fields = nulls.join(',');
  return { measurement: s.measurement, tags: s.tags, fields, timestamp: isoToMicros(s.t) };
}

export interface InfluxSinkOptions {
  /** Run directory; unsent points go to <runDir>/influx-buffer/. */
  runDir: string;
  /** Points per write (default 5000). */
  batchSize?: number;
  /** Longest a point waits in memory before a write (default 1000 ms). */
  flushMs?: number;
  /** HTTP request timeout (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Retry backoff while the database is unreachable (default 500 ms doubling to 10 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** One line when the database goes away and one when it is back. Default console.error. */
  log?: (msg: string) => void;
}

export interface InfluxSinkStats {
  written: number;
  batches: number;
  failures: number;
  bufferedToDisk: number;
  pendingOnDisk: number;
  /** Points that could neither be sent nor buffered (e.g. disk full): lost to InfluxDB, still in the run directory. */
  dropped: number;
}

/**
 * Streams samples to InfluxDB 1.x in batches. While the database is
 * unreachable, batches go to disk (in order) and are re-sent with backoff once
 * it answers; new batches queue behind them, so order is kept. A batch whose
 * write failed ambiguously (timeout after the server stored it) is re-sent
 * whole: with explicit timestamps InfluxDB overwrites identical points, so
 * nothing is lost and nothing is duplicated.
 */
export class InfluxSink {
  private readonly target: InfluxTarget;
  private client: InfluxDB;
  private readonly buffer: InfluxDiskBuffer;
  private queue: Sample[] = [];
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private offline = false;
  private backoff: number;
  private dbReady = false;
  private closed = false;
  private readonly log: (msg: string) => void;
  private readonly st: InfluxSinkStats = { written: 0, batches: 0, failures: 0, bufferedToDisk: 0, pendingOnDisk: 0, dropped: 0 };

  constructor(
    url: string,
    private readonly opts: InfluxSinkOptions,
  ) {
    this.target = parseInfluxUrl(url);
    this.client = this.newClient();
    this.buffer = new InfluxDiskBuffer(join(opts.runDir, 'influx-buffer'));
    this.backoff = opts.retryMinMs ?? 500;
    this.log = opts.log ?? ((m) => console.error(m));
    this.timer = setInterval(() => void this.flush(), opts.flushMs ?? 1000);
    // Segments left by an earlier run of this directory are sent first.
    if (!this.buffer.empty) {
      this.offline = true;
      this.scheduleRetry(0);
    }
  }

  /** The target without credentials: what the manifest records. */
  get url(): string {
    return shown(this.target);
  }

  write(s: Sample): void {
    this.queue.push(s);
    if (this.queue.length >= (this.opts.batchSize ?? 5000)) void this.flush();
  }

  writeMany(ss: readonly Sample[]): void {
    for (const s of ss) this.write(s);
  }

  /** Sends (or buffers to disk) everything queued so far. */
  flush(): Promise<void> {
    this.chain = this.chain.then(() => this.sendQueued()).catch((e: unknown) => this.log(`influx: ${redactInText(errorMessage(e))}`));
    return this.chain;
  }

  stats(): InfluxSinkStats {
    let pendingOnDisk = 0;
    try {
      pendingOnDisk = this.buffer.pendingPoints();
    } catch {
      pendingOnDisk = -1; // unreadable buffer: reported, not fatal
    }
    return { ...this.st, pendingOnDisk };
  }

  /**
   * Flushes, then keeps retrying the disk buffer until it is empty or
   * `drainTimeoutMs` passes (default 0: leave it on disk for a later run or
   * `migbench export`).
   */
  async close(drainTimeoutMs = 0): Promise<InfluxSinkStats> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
    const end = Date.now() + drainTimeoutMs;
    while (this.offline && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      await this.chain;
    }
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.chain;
    return this.stats();
  }

  private newClient(): InfluxDB {
    const t = this.target;
    return new InfluxDB({
      host: t.host,
      port: t.port,
      protocol: t.protocol,
      database: t.database,
      username: t.username,
      password: t.password,
      pool: { maxRetries: 0, requestTimeout: this.opts.requestTimeoutMs ?? 5000 },
    });
  }

  private async send(batch: readonly Sample[]): Promise<void> {
    if (!this.dbReady) {
      await this.client.createDatabase(this.target.database); // idempotent in 1.x
      this.dbReady = true;
    }
    for (let i = 0; i < batch.length; i += this.opts.batchSize ?? 5000) {
      const part = batch.slice(i, i + (this.opts.batchSize ?? 5000));
      await this.client.writePoints(part.map(sampleToPoint), { precision: 'u', database: this.target.database });
    }
    this.st.written += batch.length;
    this.st.batches += 1;
  }

  private async sendQueued(): Promise<void> {
    const size = this.opts.batchSize ?? 5000;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, size);
      if (this.offline) {
        this.toDisk(batch);
        continue;
      }
      try {
        await this.send(batch);
      } catch (e) {
        this.toDisk(batch);
        this.goOffline(e);
      }
    }
  }

  /**
   * A failing disk buffer (ENOSPC, EIO) must not reject the flush chain: the
   * timer that drives it has no one to report to, and an unhandled rejection
   * would end the run without cleanup. The points stay in the run directory's
   * samples/ (replayable with `migbench export`), so they are counted and logged.
   */
  private toDisk(batch: readonly Sample[]): void {
    try {
      this.buffer.append(batch);
      this.st.bufferedToDisk += batch.length;
    } catch (e) {
      if (this.st.dropped === 0)
        this.log(`influx: cannot buffer points in ${this.buffer.dir} (${errorMessage(e)}); they stay in samples/ for 'migbench export'`);
      this.st.dropped += batch.length;
    }
  }

  private goOffline(e: unknown): void {
    this.st.failures += 1;
    if (!this.offline) {
      this.offline = true;
      this.log(
        `influx: ${shown(this.target)} unreachable (${redactInText(errorMessage(e))}); buffering points in ${this.buffer.dir} and retrying`,
      );
    }
    this.client = this.newClient(); // a fresh pool: the old one keeps the host marked down for its own backoff
    this.scheduleRetry(this.backoff);
    this.backoff = Math.min(this.backoff * 2, this.opts.retryMaxMs ?? 10_000);
  }

  private scheduleRetry(ms: number): void {
    if (this.closed) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.chain = this.chain.then(() => this.drain()).catch((e: unknown) => this.log(`influx: ${redactInText(errorMessage(e))}`));
    }, ms);
  }

  /** Re-sends disk segments oldest first; on success goes back online. */
  private async drain(): Promise<void> {
    let sent = 0;
    for (const seg of this.buffer.segments()) {
      const batch = this.buffer.read(seg);
      try {
        await this.send(batch);
      } catch (e) {
        this.goOffline(e); // still offline: counts the failure and reschedules, logs nothing new
        return;
      }
      this.buffer.remove(seg);
      sent += batch.length;
    }
    this.offline = false;
    this.backoff = this.opts.retryMinMs ?? 500;
    this.log(`influx: ${shown(this.target)} reachable again; ${sent} buffered points sent`);
  }
}

/**
 * Sends every sample of a run directory (samples/*.jsonl) to InfluxDB, for
 * `migbench export <runDir> --influx URL`. Safe to repeat: identical points
 * overwrite themselves.
 */
export async function replayRunDir(
  runDir: string,
  url: string,
  opts: { batchSize?: number; requestTimeoutMs?: number } = {},
): Promise<{ files: number; points: number }> {
  const target = parseInfluxUrl(url);
  const dir = join(runDir, 'samples');
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .sort();
  } catch {
    throw new UserError(`${runDir} has no samples/ directory; is it a migbench run directory?`);
  }
  const client = new InfluxDB({
    host: target.host,
    port: target.port,
    protocol: target.protocol,
    database: target.database,
    username: target.username,
    password: target.password,
    pool: { maxRetries: 2, requestTimeout: opts.requestTimeoutMs ?? 30_000 },
  });
  try {
    await client.createDatabase(target.database);
  } catch (e) {
    const why = redactInText(errorMessage(e));
    throw new UserError(`cannot reach InfluxDB at ${shown(target)}: ${why}; check that influxd runs and the URL`);
  }
  const size = opts.batchSize ?? 5000;
  let points = 0;
  for (const f of files) {
    const samples = readJsonl<Sample>(join(dir, f));
    for (let i = 0; i < samples.length; i += size) {
      await client.writePoints(samples.slice(i, i + size).map(sampleToPoint), { precision: 'u', database: target.database });
    }
    points += samples.length;
  }
  return { files: files.length, points };
}
