/**
 * Clients of a guest's web service, run from the client host (a Launcher: the
 * client namespace locally, the inventory's client over SSH) for a whole
 * treatment: httperf in consecutive windows (measurement 'httperf', one
 * sample per window) and a Node agent for per-request response times of
 * fixed-rate load and periodic operation probes (measurement 'workload', one
 * sample per request). Every sample carries the phase (before / during /
 * after a migration) of its send time, from the PhaseClock.
 */
import { createInterface } from 'node:readline';
import type { LaunchedProcess, Launcher } from '../driver/launch.ts';
import type { ClientSpecT } from '../spec/schema.ts';
import type { Sample } from '../store/sample.ts';
import { UserError } from '../util/errors.ts';
import { errorMessage } from '../util/errors.ts';
import { safeInterval, within } from '../util/timers.ts';
import { PACKAGE_ROOT } from '../util/paths.ts';
import type { AgentClient, AgentConfig, AgentResult } from './http-agent.ts';
import { httperfArgs, parseHttperf } from './httperf.ts';
import type { PhaseClock } from './phases.ts';

export interface StartClientsOptions {
  /** Where the clients run: localLauncher(topology.clientNs) here, sshLauncher(conn) on a cluster. */
  launcher: Launcher;
  /** VM name (tag) and guest address. */
  vm: string;
  ip: string;
  port?: number;
  clients: readonly ClientSpecT[];
  clock: PhaseClock;
  /** Tags for every sample (experiment, treatment, ...); vm and op are added. */
  tags: Record<string, string>;
  emit: (samples: Sample[]) => void;
  log?: (line: string) => void;
}

export interface ClientStats {
  id: string;
  op: string;
  requests: number;
  ok: number;
}

export interface ClientSet {
  /** Requests and successes so far, per client. */
  stats(): ClientStats[];
  /** Ends every client process (by PID) and flushes what they measured. */
  stop(): Promise<void>;
}

/** The path a probe op requests. */
export function opPath(op: string): string {
  return op === 'page' ? '/index.html' : `/cgi-bin/op?${op}`;
}

/** Client id, also the `op` tag: httperf-100, rate-50, probe-search. */
export function clientId(c: ClientSpecT): string {
  return c.kind === 'probe' ? `probe-${c.op}` : `${c.kind}-${c.rate}`;
}

class HttperfLoop {
  private stopped = false;
  private child: LaunchedProcess | null = null;
  private loop: Promise<void> = Promise.resolve();
  private unsent: Sample[] = [];
  readonly stat: ClientStats;

  constructor(
    private o: StartClientsOptions,
    private c: Extract<ClientSpecT, { kind: 'httperf' }>,
  ) {
    this.stat = { id: clientId(c), op: clientId(c), requests: 0, ok: 0 };
  }

  start(): void {
    // the loop has no awaiting caller until stop(): report instead of an unhandled rejection
    this.loop = this.run().catch((e: unknown) => this.o.log?.(`httperf loop against ${this.o.ip} stopped: ${errorMessage(e)}`));
  }

  private async run(): Promise<void> {
    const windowMs = this.c.window.ms;
    const args = httperfArgs({
      server: this.o.ip,
      port: this.o.port,
      uri: this.c.uri,
      rate: this.c.rate,
      numConns: (this.c.rate * windowMs) / 1000,
      timeoutS: this.c.timeout.ms / 1000,
    });
    while (!this.stopped) {
      const t0 = Date.now();
      const out = await this.once(args);
      const s = parseHttperf(out);
      if (!s) {
        this.o.log?.(`httperf against ${this.o.ip} printed no summary: ${out.trim().slice(-300)}`);
        if (this.stopped) break;
        await new Promise((r) => setTimeout(r, windowMs)); // do not spin on a persistent failure
        continue;
      }
      this.stat.requests += s.requests;
      this.stat.ok += s.status2xx;
      this.unsent.push({
        t: new Date(t0).toISOString(),
        measurement: 'httperf',
        tags: { ...this.o.tags, vm: this.o.vm, op: this.stat.id },
        fields: {
          phase: this.o.clock.phaseAt(t0),
          phase_end: this.o.clock.phaseAt(Date.now()),
          rate: this.c.rate,
          reply_rate: s.replyRate,
          request_rate: s.requestRate,
          requests: s.requests,
          replies: s.replies,
          status_2xx: s.status2xx,
          errors: s.errors,
          client_timeouts: s.clientTimeouts,
          conn_refused: s.connRefused,
          conn_reset: s.connReset,
          response_ms: s.responseMs,
          conn_ms_avg: s.connMsAvg,
          conn_ms_max: s.connMsMax,
          duration_s: s.testDurationS,
          partial: this.stopped,
        },
      });
      try {
        this.o.emit(this.unsent);
        this.unsent = [];
      } catch (e) {
        // e.g. disk full: keep the windows and hand them over with the next one
        this.o.log?.(`httperf against ${this.o.ip}: ${this.unsent.length} window(s) not recorded yet (${errorMessage(e)})`);
      }
    }
  }

  private async once(args: string[]): Promise<string> {
    let child: LaunchedProcess;
    try {
      child = await this.o.launcher.spawn(['httperf', ...args], { tag: 'httperf' });
    } catch (e) {
      return errorMessage(e);
    }
    this.child = child;
    let out = '';
    child.stdout.on('data', (d: Buffer | string) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer | string) => (out += d.toString()));
    const exit = await child.done;
    this.child = null;
    return exit.error ? `${out}\n${exit.error}` : out;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // SIGINT: httperf prints its summary for what it did so far
    const child = this.child;
    if (child) await child.signal('SIGINT');
    const t = setTimeout(() => {
      if (child) void child.stop();
    }, 5000);
    await this.loop;
    clearTimeout(t);
  }
}

class AgentProcess {
  private child: LaunchedProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private pending: Sample[] = [];
  private timer: NodeJS.Timeout | null = null;
  readonly stats = new Map<string, ClientStats>();

  constructor(
    private o: StartClientsOptions,
    private clients: AgentClient[],
    private ops: Map<string, string>,
  ) {
    for (const c of clients) this.stats.set(c.id, { id: c.id, op: ops.get(c.id)!, requests: 0, ok: 0 });
  }

  async start(): Promise<void> {
    const cfg: AgentConfig = { host: this.o.ip, port: this.o.port ?? 80, clients: this.clients };
    const agent = await this.o.launcher.program('http-agent');
    const child = await this.o.launcher.spawn([...agent, JSON.stringify(cfg)], { tag: 'http-agent', stdin: true, cwd: PACKAGE_ROOT });
    this.child = child;
    this.exited = child.done.then(() => undefined);
    let stderr = '';
    child.stderr.on('data', (d: Buffer | string) => (stderr = (stderr + d.toString()).slice(-2000)));
    const ready = new Promise<void>((resolve, reject) => {
      void child.done.then((x) =>
        reject(
          new Error(`HTTP client agent exited (code ${x.code}${x.error ? `, ${x.error}` : ''}) before it was ready: ${stderr.trim()}`),
        ),
      );
      createInterface({ input: child.stdout }).on('line', (line) => {
        let r: AgentResult | { ready: true };
        try {
          r = JSON.parse(line);
        } catch {
          return;
        }
        if ('ready' in r) return resolve();
        this.record(r);
      });
    });
    this.timer = safeInterval(
      () => this.flush(),
      1000,
      (e) => {
        if (!this.flushFailing)
          this.o.log?.(`client agent of ${this.o.vm}: samples not recorded yet (${errorMessage(e)}); kept and retried`);
        this.flushFailing = true;
      },
    );
    if (
      (await within(
        ready.then(() => true),
        30_000,
      )) === null
    )
      throw new Error(`HTTP client agent (${this.o.launcher.where}) not ready after 30 s: ${stderr.trim()}`);
  }

  private record(r: AgentResult): void {
    const st = this.stats.get(r.id);
    if (st) {
      st.requests++;
      if (r.ok) st.ok++;
    }
    this.pending.push({
      t: new Date(r.sent_ms).toISOString(),
      measurement: 'workload',
      tags: { ...this.o.tags, vm: this.o.vm, op: st?.op ?? r.id },
      fields: { phase: this.o.clock.phaseAt(r.sent_ms), response_ms: r.ms, ok: r.ok, status: r.status, bytes: r.bytes, error: r.error },
    });
  }

  private flushFailing = false;

  /** Hands queued samples over; if that throws, they stay queued (in order) for the next flush. */
  private flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      this.o.emit(batch);
      this.flushFailing = false;
    } catch (e) {
      this.pending = batch.concat(this.pending);
      throw e;
    }
  }

  async stop(): Promise<void> {
    this.child?.endInput();
    await this.child?.stop();
    await this.exited;
    if (this.timer) clearInterval(this.timer);
    this.flush();
  }
}

/** Starts the VM's clients; resolves once they run. */
export async function startClients(o: StartClientsOptions): Promise<ClientSet> {
  const httperfs = o.clients.filter((c): c is Extract<ClientSpecT, { kind: 'httperf' }> => c.kind === 'httperf');
  if (httperfs.length && !(await o.launcher.haveCommand('httperf'))) {
    throw new UserError(
      `required program 'httperf' was not found on PATH of ${o.launcher.where}; install it with: apt-get install httperf`,
    );
  }
  const agentClients: AgentClient[] = [];
  const ops = new Map<string, string>();
  for (const c of o.clients) {
    if (c.kind === 'httperf') continue;
    const id = `${clientId(c)}#${agentClients.length}`;
    ops.set(id, clientId(c));
    agentClients.push(
      c.kind === 'probe'
        ? { id, path: opPath(c.op), mode: 'probe', intervalMs: c.interval.ms, timeoutMs: c.timeout.ms }
        : { id, path: c.uri, mode: 'rate', rate: c.rate, timeoutMs: c.timeout.ms },
    );
  }
  const agent = agentClients.length ? new AgentProcess(o, agentClients, ops) : null;
  const loops = httperfs.map((c) => new HttperfLoop(o, c));
  try {
    await agent?.start();
  } catch (e) {
    await agent?.stop();
    throw e;
  }
  for (const l of loops) l.start();
  return {
    stats: () => [...loops.map((l) => ({ ...l.stat })), ...(agent ? [...agent.stats.values()].map((s) => ({ ...s })) : [])],
    stop: async () => {
      await Promise.all([...loops.map((l) => l.stop()), agent?.stop()]);
    },
  };
}
