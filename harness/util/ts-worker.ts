/**
 * A worker thread running one of the project's TypeScript modules, and the
 * calls between it and the main thread. The sources run through tsx as in
 * bin/ (no build step): the worker's entry is a tiny ES module (a data: URL)
 * that registers tsx's loader and imports the module, because node 20
 * ignores `--import` in a worker's execArgv for its entry and tsx's CommonJS
 * register fails there. Starting one takes ~0.3 s (tsx and the module's
 * imports), so callers start it early, while the main thread reads.
 *
 * The module calls serveCalls() with its jobs; the main thread calls them
 * with TsWorker.call(). A job's error comes back as an Error with its
 * message; a worker that dies fails every pending call with why.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { parentPort, Worker, type Transferable } from 'node:worker_threads';

type Request = { id: number; job: string; args: unknown };
type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; message: string } | { ready: true };

/** A job's result with the buffers to move (not copy) to the caller. */
export class Transfer<T> {
  constructor(
    readonly value: T,
    readonly list: readonly Transferable[],
  ) {}
}

/** tsx's ESM register(), as a file URL the data: entry can import. */
function tsxApiUrl(): string {
  const cjs = createRequire(import.meta.url).resolve('tsx/esm/api');
  return pathToFileURL(cjs.replace(/index\.cjs$/, 'index.mjs')).href;
}

export class TsWorker {
  private readonly worker: Worker;
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;
  /** Resolves once the module is loaded and serving (rejects if it cannot start). */
  readonly ready: Promise<void>;

  /** `module`: the worker's TypeScript module (it must call serveCalls); `name` is used in error messages. */
  constructor(
    module: URL,
    private readonly name: string,
  ) {
    const entry = `import { register } from ${JSON.stringify(tsxApiUrl())}; register(); await import(${JSON.stringify(module.href)});`;
    this.worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(entry)}`), { name });
    let started: () => void = () => undefined;
    let failed: (e: Error) => void = () => undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      started = resolve;
      failed = reject;
    });
    this.ready.catch(() => undefined); // observed by call() and by callers that await it
    this.worker.on('message', (m: Reply) => {
      if ('ready' in m) {
        started();
        return this.idle();
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      this.idle();
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(m.message));
    });
    const die = (why: Error) => {
      this.dead ??= why;
      failed(this.dead);
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    };
    this.worker.on('error', (e) => die(new Error(`${name} worker failed: ${e.message}`)));
    this.worker.on('exit', (code) => die(new Error(`${name} worker ended (exit code ${code})`)));
    // a worker keeps the process alive while it starts and while a call is pending, not when idle (see idle)
  }

  /** Runs `job` in the worker with `args` (copied, or moved when listed in `transfer`). */
  async call<T>(job: string, args: unknown, transfer: readonly Transferable[] = []): Promise<T> {
    if (this.dead) throw this.dead;
    const id = this.next++;
    const reply = new Promise<T>((resolve, reject) => this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject }));
    this.worker.ref();
    // posted before it is ready: the worker reads its messages once its module listens
    this.worker.postMessage({ id, job, args } satisfies Request, transfer);
    return reply;
  }

  private idle(): void {
    if (this.pending.size === 0) this.worker.unref();
  }

  /** Ends the worker; pending calls fail. */
  async close(): Promise<void> {
    this.dead ??= new Error(`${this.name} worker was closed`);
    await this.worker.terminate();
  }
}

/** In a worker module: answers TsWorker.call() with these jobs. */
export function serveCalls(jobs: Record<string, (args: never) => unknown>): void {
  const port = parentPort;
  if (!port) throw new Error('serveCalls() runs in a worker thread started by TsWorker');
  port.on('message', async ({ id, job, args }: Request) => {
    try {
      const f = jobs[job];
      if (!f) throw new Error(`no job '${job}' in this worker`);
      const r = await f(args as never);
      if (r instanceof Transfer) port.postMessage({ id, ok: true, value: r.value } satisfies Reply, r.list);
      else port.postMessage({ id, ok: true, value: r } satisfies Reply);
    } catch (e) {
      port.postMessage({ id, ok: false, message: e instanceof Error ? e.message : String(e) } satisfies Reply);
    }
  });
  port.postMessage({ ready: true } satisfies Reply);
}
