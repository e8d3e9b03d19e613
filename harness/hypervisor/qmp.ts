/**
 * QMP client over a unix socket (node:net), or over any byte stream to one
 * (fromStream: a remote QEMU's socket forwarded over SSH). Commands carry an id, so replies
 * are matched even when events arrive in between; events keep QEMU's own
 * timestamp (epoch ms) next to our receive time.
 */
import { EventEmitter } from 'node:events';
import { createConnection } from 'node:net';
import type { Duplex } from 'node:stream';

/** Retry period while QEMU creates its QMP socket: every destination start waits on it, so short (a failed connect costs microseconds). */
const CONNECT_RETRY_MS = 10;

export interface QemuVersion {
  major: number;
  minor: number;
  micro: number;
}

export interface QmpGreeting {
  version: QemuVersion;
  /** Distribution package string, e.g. "Debian 1:10.0.2+ds-2". */
  package: string;
  capabilities: string[];
}

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  /** QEMU's timestamp (host wall clock) in epoch ms with µs fraction; NaN if QEMU sent none. */
  timestampMs: number;
  /** When this process received the event (epoch ms). */
  receivedAtMs: number;
  /** Position in this connection's event sequence (see QmpClient.mark). */
  seq: number;
}

/** QEMU answered a command with an error. */
export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP command '${command}' failed: ${desc} (${errorClass})`);
    this.name = 'QmpError';
  }
}

/** The connection ended (QEMU exited or closed the socket). */
export class QmpClosedError extends Error {
  constructor(what: string, label: string) {
    super(`QMP ${what}: QEMU exited (${label} connection closed)`);
    this.name = 'QmpClosedError';
  }
}

export interface QmpConnectOptions {
  /** Total time to wait for the socket to appear and greet (default 30 s). */
  timeoutMs?: number;
  /** Label for messages, e.g. the VM name. */
  label?: string;
  /** Stop retrying early (e.g. when the QEMU process exited). */
  signal?: AbortSignal;
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

interface EventWaiter {
  match: (e: QmpEvent) => boolean;
  resolve: (e: QmpEvent) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

/** Converts QMP's {seconds, microseconds} to epoch milliseconds. */
export function qmpTimestampMs(ts: unknown): number {
  const t = ts as { seconds?: number; microseconds?: number } | undefined;
  if (!t || typeof t.seconds !== 'number' || t.seconds < 0) return NaN;
  return t.seconds * 1000 + (t.microseconds ?? 0) / 1000;
}

/** Splits a byte stream into JSON lines; keeps the incomplete tail. */
export class LineSplitter {
  private buf = '';
  push(chunk: string): string[] {
    this.buf += chunk;
    const parts = this.buf.split('\n');
    this.buf = parts.pop() ?? '';
    return parts.map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '');
  }
}

const HISTORY_LIMIT = 10_000;

export class QmpClient extends EventEmitter<{ event: [QmpEvent]; close: [] }> {
  private nextId = 1;
  private seq = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly waiters = new Set<EventWaiter>();
  private readonly history: QmpEvent[] = [];
  private isClosed = false;
  /** Resolves when the connection has ended. */
  readonly closed: Promise<void>;
  private markClosed!: () => void;

  private constructor(
    private readonly socket: Duplex,
    readonly label: string,
    readonly greeting: QmpGreeting,
  ) {
    super();
    this.closed = new Promise((r) => (this.markClosed = r));
  }

  /**
   * Connects to a QMP socket, retrying until it exists (bounded), reads the
   * greeting and negotiates capabilities.
   */
  static async connect(path: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const label = opts.label ?? path;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (opts.signal?.aborted) throw new Error(`QMP connect ${label}: aborted (${String(opts.signal.reason ?? 'QEMU exited')})`);
      try {
        return await QmpClient.negotiate(createConnection(path), path, label, deadline);
      } catch (e) {
        const code = (e as { code?: string }).code;
        const retryable = code === 'ENOENT' || code === 'ECONNREFUSED';
        if (!retryable || Date.now() + CONNECT_RETRY_MS > deadline) {
          if (retryable) throw new Error(`QMP connect ${label}: socket ${path} not ready within ${timeoutMs} ms`);
          throw e;
        }
        await new Promise((r) => setTimeout(r, CONNECT_RETRY_MS));
      }
    }
  }

  /**
   * A client on an already open stream to a QMP socket (e.g. ssh2's streamlocal
   * forwarding of a remote QEMU's socket): reads the greeting, negotiates
   * capabilities. No retry: the caller opens the stream once QEMU listens.
   */
  static fromStream(stream: Duplex, opts: { label: string; timeoutMs?: number }): Promise<QmpClient> {
    return QmpClient.negotiate(stream, opts.label, opts.label, Date.now() + (opts.timeoutMs ?? 30_000));
  }

  private static async negotiate(stream: Duplex, what: string, label: string, deadline: number): Promise<QmpClient> {
    const { socket, greeting, rest, splitter } = await greet(stream, what, Math.max(1, deadline - Date.now()));
    const c = new QmpClient(socket, label, greeting);
    c.attach(rest, splitter);
    await c.execute('qmp_capabilities', {}, { timeoutMs: Math.max(1000, deadline - Date.now()) });
    return c;
  }

  private attach(rest: string[], lines: LineSplitter): void {
    this.socket.on('data', (chunk: string) => {
      for (const l of lines.push(chunk)) this.onLine(l);
    });
    this.socket.on('error', () => {
      /* 'close' follows and rejects everything */
    });
    this.socket.on('close', () => this.onClose());
    // QEMU's output ended: no reply can come; a half-open stream (ssh2 channel, Duplex) may not emit 'close' yet
    this.socket.on('end', () => {
      this.onClose();
      this.socket.end();
    });
    for (const l of rest) this.onLine(l);
    this.socket.resume(); // paused after the greeting so nothing is lost in between
  }

  private onLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // QEMU only sends JSON; ignore anything torn
    }
    if (typeof msg.event === 'string') {
      this.onEvent(msg);
      return;
    }
    const id = msg.id === undefined ? undefined : String(msg.id);
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p) return; // reply to a command that timed out
    this.pending.delete(id!);
    clearTimeout(p.timer);
    if (msg.error) {
      const err = msg.error as { class?: string; desc?: string };
      p.reject(new QmpError(p.command, err.class ?? 'GenericError', err.desc ?? 'unknown error'));
    } else {
      p.resolve(msg.return);
    }
  }

  private onEvent(msg: Record<string, unknown>): void {
    const ev: QmpEvent = {
      event: msg.event as string,
      data: (msg.data as Record<string, unknown>) ?? {},
      timestampMs: qmpTimestampMs(msg.timestamp),
      receivedAtMs: Date.now(),
      seq: ++this.seq,
    };
    this.history.push(ev);
    if (this.history.length > HISTORY_LIMIT) this.history.shift();
    for (const w of [...this.waiters]) {
      if (w.match(ev)) {
        this.waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(ev);
      }
    }
    this.emit('event', ev);
  }

  private onClose(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new QmpClosedError(`command '${p.command}'`, this.label));
      this.pending.delete(id);
    }
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new QmpClosedError('waiting for event', this.label));
    }
    this.waiters.clear();
    this.markClosed();
    this.emit('close');
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** Runs a QMP command; rejects with QmpError on QEMU's error, or on timeout/close. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeoutMs?: number } = {}): Promise<T> {
    if (this.isClosed) return Promise.reject(new QmpClosedError(`command '${command}'`, this.label));
    const id = `mb-${this.nextId++}`;
    const timeoutMs = opts.timeoutMs ?? 30_000;
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { command, resolve: resolve as (v: unknown) => void, reject };
      p.timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP command '${command}' (${this.label}): no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, p);
      const msg: Record<string, unknown> = { execute: command, id };
      if (args && Object.keys(args).length > 0) msg.arguments = args;
      this.socket.write(`${JSON.stringify(msg)}\n`);
    });
  }

  /** Sequence number of the last event received; pass to waitForEvent's `since` to include events after it. */
  mark(): number {
    return this.seq;
  }

  /** Events received so far (bounded history), oldest first. */
  events(): readonly QmpEvent[] {
    return this.history;
  }

  /**
   * Resolves with the first event named `name` matching `predicate`. By
   * default only events arriving after the call count; pass `since` (from
   * mark()) to also accept ones already received after that point, which
   * closes the race between sending a command and starting to wait.
   */
  waitForEvent(
    name: string,
    predicate: (e: QmpEvent) => boolean = () => true,
    timeoutMs = 60_000,
    opts: { since?: number } = {},
  ): Promise<QmpEvent> {
    const match = (e: QmpEvent) => e.event === name && predicate(e);
    if (opts.since !== undefined) {
      const hit = this.history.find((e) => e.seq > opts.since! && match(e));
      if (hit) return Promise.resolve(hit);
    }
    if (this.isClosed) return Promise.reject(new QmpClosedError(`waiting for event ${name}`, this.label));
    return new Promise((resolve, reject) => {
      const w: EventWaiter = { match, resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`QMP ${this.label}: event ${name} not received within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /** Closes the connection (QEMU keeps running). */
  close(): Promise<void> {
    if (!this.isClosed) this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    return this.closed;
  }
}

/** Reads the greeting line from a freshly opened stream; returns any lines after it. */
function greet(
  socket: Duplex,
  path: string,
  timeoutMs: number,
): Promise<{ socket: Duplex; greeting: QmpGreeting; rest: string[]; splitter: LineSplitter }> {
  return new Promise((resolve, reject) => {
    const lines = new LineSplitter();
    const timer = setTimeout(() => fail(new Error(`QMP ${path}: no greeting within ${timeoutMs} ms`)), timeoutMs);
    // only our own listeners come off: a stream may have internal ones (ssh2's channel does)
    const detach = () => {
      clearTimeout(timer);
      socket.off('error', fail);
      socket.off('close', onClose);
      socket.off('data', onData);
    };
    const fail = (e: Error) => {
      detach();
      socket.on('error', () => {}); // a late error of the destroyed stream
      socket.destroy();
      reject(e);
    };
    const onClose = () => fail(new Error(`QMP ${path}: closed before greeting`));
    const onData = (chunk: string) => {
      const ls = lines.push(chunk);
      if (ls.length === 0) return;
      let g: QmpGreeting;
      try {
        g = parseGreeting(ls[0]);
      } catch (e) {
        fail(e as Error);
        return;
      }
      socket.pause();
      detach();
      socket.on('error', () => {}); // until attach() installs its handlers
      resolve({ socket, greeting: g, rest: ls.slice(1), splitter: lines });
    };
    socket.setEncoding('utf8');
    socket.on('error', fail);
    socket.on('close', onClose);
    socket.on('data', onData);
  });
}

/** Parses QEMU's `{"QMP": {...}}` greeting. */
export function parseGreeting(line: string): QmpGreeting {
  let msg: { QMP?: { version?: { qemu?: Partial<QemuVersion>; package?: string }; capabilities?: string[] } };
  try {
    msg = JSON.parse(line);
  } catch {
    throw new Error(`QMP: greeting is not JSON: ${line.slice(0, 200)}`);
  }
  const q = msg.QMP;
  if (!q?.version?.qemu) throw new Error(`QMP: unexpected greeting: ${line.slice(0, 200)}`);
  const v = q.version.qemu;
  return {
    version: { major: v.major ?? 0, minor: v.minor ?? 0, micro: v.micro ?? 0 },
    package: (q.version.package ?? '').trim(),
    capabilities: q.capabilities ?? [],
  };
}
