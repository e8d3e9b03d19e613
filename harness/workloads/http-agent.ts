/**
 * Standalone HTTP client run inside the client namespace
 * (`ip netns exec <ns> node --import tsx http-agent.ts '<json config>'`):
 * Node's sockets live in the namespace of the process, so the agent is a
 * separate process. It prints one JSON line per request on stdout:
 *   {"id":"<client id>","sent_ms":<epoch ms>,"ms":<response time>,"status":200,"ok":true,"bytes":n,"error":null}
 * and ends on SIGTERM or when stdin closes (its parent went away).
 * Rate clients are open loop (a request is sent on schedule even while
 * earlier ones are outstanding), probe clients send the next request one
 * interval after the previous one was sent, or when it returned if later.
 */
import { request } from 'node:http';

export interface AgentClient {
  id: string;
  path: string;
  /** 'rate': requests/s, open loop; 'probe': one outstanding request, every intervalMs. */
  mode: 'rate' | 'probe';
  rate?: number;
  intervalMs?: number;
  timeoutMs: number;
}

export interface AgentConfig {
  host: string;
  port: number;
  clients: AgentClient[];
}

export interface AgentResult {
  id: string;
  sent_ms: number;
  ms: number | null;
  status: number | null;
  ok: boolean;
  bytes: number;
  error: string | null;
}

function once(cfg: AgentConfig, c: AgentClient): Promise<AgentResult> {
  const sent = performance.timeOrigin + performance.now();
  const t0 = performance.now();
  return new Promise((resolve) => {
    let bytes = 0;
    let done = false;
    const finish = (r: Omit<AgentResult, 'id' | 'sent_ms' | 'bytes'>) => {
      if (done) return;
      done = true;
      resolve({ id: c.id, sent_ms: sent, bytes, ...r });
    };
    const req = request({ host: cfg.host, port: cfg.port, path: c.path, agent: false, timeout: c.timeoutMs }, (res) => {
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => {
        const status = res.statusCode ?? null;
        finish({ ms: performance.now() - t0, status, ok: status !== null && status >= 200 && status < 300, error: null });
      });
      res.on('error', (e) => finish({ ms: null, status: res.statusCode ?? null, ok: false, error: e.message }));
    });
    req.on('timeout', () => {
      finish({ ms: null, status: null, ok: false, error: `timeout after ${c.timeoutMs} ms` });
      req.destroy();
    });
    req.on('error', (e) => finish({ ms: null, status: null, ok: false, error: e.message }));
    req.end();
  });
}

function emit(r: AgentResult): void {
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

async function runRate(cfg: AgentConfig, c: AgentClient, stop: { stopped: boolean }): Promise<void> {
  const period = 1000 / c.rate!;
  let next = performance.now();
  while (!stop.stopped) {
    void once(cfg, c).then(emit);
    next += period;
    const wait = next - performance.now();
    if (wait < -1000) next = performance.now(); // far behind (CPU stolen): drop, do not burst
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));
  }
}

async function runProbe(cfg: AgentConfig, c: AgentClient, stop: { stopped: boolean }): Promise<void> {
  while (!stop.stopped) {
    const t = performance.now();
    emit(await once(cfg, c));
    await new Promise((r) => setTimeout(r, Math.max(0, c.intervalMs! - (performance.now() - t))));
  }
}

function main(): void {
  const cfg = JSON.parse(process.argv[2] ?? '') as AgentConfig;
  const stop = { stopped: false };
  const end = () => {
    stop.stopped = true;
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGTERM', end);
  process.stdin.on('end', end);
  process.stdin.on('error', end);
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  for (const c of cfg.clients) void (c.mode === 'rate' ? runRate(cfg, c, stop) : runProbe(cfg, c, stop));
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) main();
