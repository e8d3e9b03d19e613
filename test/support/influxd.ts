import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** A private influxd (1.x) for tests: own data dirs in /tmp/mb-p-influxd-*, HTTP on 127.0.0.1:<free port>. */
export interface TestInfluxd {
  url: string;
  port: number;
  pid: number;
  dir: string;
  /** Pauses (SIGSTOP) / resumes (SIGCONT) the daemon: requests hang, as with an unreachable server. */
  pause(): void;
  resume(): void;
  /** Kills the daemon (SIGKILL) and starts it again on the same port and data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function config(dir: string, port: number, rpcPort: number): string {
  return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"
[meta]
  dir = "${join(dir, 'meta')}"
  logging-enabled = false
[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:${port}"
  log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
`;
}

async function waitPing(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`influxd exited (${child.exitCode ?? child.signalCode})`);
    try {
      const r = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(500) });
      if (r.status === 204) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`influxd did not answer /ping within ${timeoutMs} ms`);
}

export async function startInfluxd(): Promise<TestInfluxd> {
  const dir = mkdtempSync('/tmp/mb-p-influxd-');
  const port = await freeTcpPort();
  const rpcPort = await freeTcpPort();
  const conf = join(dir, 'influxdb.conf');
  writeFileSync(conf, config(dir, port, rpcPort));
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess;
  const launch = async () => {
    child = spawn('influxd', ['-config', conf], { stdio: 'ignore' });
    await waitPing(url, child, 15_000);
  };
  const kill = async (sig: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGCONT');
    child.kill(sig);
    await done;
  };
  await launch();
  return {
    url,
    port,
    dir,
    get pid() {
      return child.pid!;
    },
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    restart: async () => {
      await kill('SIGKILL');
      await launch();
    },
    stop: async () => {
      await kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
