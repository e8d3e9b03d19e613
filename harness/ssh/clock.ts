/**
 * Clock offset of a server relative to the controller, from SSH round trips:
 * the server's time is read between our send and receive, so
 * offset = remote - (send + recv) / 2 is off by at most RTT/2; the sample with
 * the smallest RTT gives the tightest bound.
 */
import type { SshConnection } from './connection.ts';

export interface ClockSample {
  /** Controller wall clock (ms since the epoch, sub-ms) when the request was written / the answer read. */
  sendMs: number;
  recvMs: number;
  /** Server wall clock (ms since the epoch) in its answer. */
  remoteMs: number;
}

export interface ClockOffset {
  /** remote - controller, ms. Subtract from a server timestamp to get controller time. */
  offsetMs: number;
  /** Half the round trip of the sample used: |true offset - offsetMs| <= uncertaintyMs. */
  uncertaintyMs: number;
  minRttMs: number;
  medianRttMs: number;
  samples: number;
}

export function clockOffset(samples: readonly ClockSample[]): ClockOffset {
  if (!samples.length) throw new Error('clockOffset: no samples');
  const rtts = samples.map((s) => s.recvMs - s.sendMs);
  let best = 0;
  for (let i = 1; i < samples.length; i++) if (rtts[i] < rtts[best]) best = i;
  const s = samples[best];
  const sorted = [...rtts].sort((a, b) => a - b);
  return {
    offsetMs: s.remoteMs - (s.sendMs + s.recvMs) / 2,
    uncertaintyMs: rtts[best] / 2,
    minRttMs: rtts[best],
    medianRttMs: sorted[Math.floor(sorted.length / 2)],
    samples: samples.length,
  };
}

/**
 * A wall clock with sub-ms resolution: performance.timeOrigin + performance.now()
 * while that agrees with Date.now(); otherwise (the wall clock was stepped since
 * the process started) Date.now() (ms steps) anchored to performance.now() at a
 * step edge. Being descheduled between the two reads can only make that anchor
 * too small, so the largest of a few edges is kept. Made per measurement, so
 * the monotonic clock's drift from wall time does not accumulate.
 */
export function calibratedWallClock(edges = 5): () => number {
  // performance.timeOrigin is the wall clock at process start to the µs: while it still agrees with
  // Date.now() (which floors to the ms) no clock step or drift has moved them apart, and it is exact,
  // where anchoring at a ms edge is biased by however late this process was scheduled (ms under load)
  const fromOrigin = performance.timeOrigin + performance.now();
  const lag = fromOrigin - Date.now();
  if (lag > -2 && lag < 3) return () => performance.timeOrigin + performance.now();
  let anchor = -Infinity;
  for (let i = 0; i < edges; i++) {
    const start = Date.now();
    let t = start;
    let p = 0;
    while (t === start) {
      t = Date.now();
      p = performance.now();
    }
    anchor = Math.max(anchor, t - p);
  }
  return () => anchor + performance.now();
}

/** Server side: answers each input line with its wall clock in seconds (bash's $EPOCHREALTIME needs no fork; date as fallback). */
export const CLOCK_SCRIPT = [
  `if command -v bash >/dev/null 2>&1 && bash -c '[ -n "$EPOCHREALTIME" ]'; then`,
  `  exec bash -c 'echo ready; while read -r _; do echo "$EPOCHREALTIME"; done'`,
  'fi',
  'echo ready; while read -r _; do date +%s.%N; done',
].join('\n');

/** Measures over one long-lived channel (its start-up cost is outside the round trips). */
export async function measureClockOffset(
  conn: SshConnection,
  opts: { samples?: number; timeoutMs?: number; startTimeoutMs?: number } = {},
): Promise<ClockOffset> {
  const n = opts.samples ?? 16;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  /** The first answer waits for the login shell (rc files can take seconds on a busy server). */
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  const now = calibratedWallClock();
  let buf = '';
  let waiter: ((line: string) => void) | undefined;
  const lines: string[] = [];
  const proc = await conn.spawn(['sh', '-c', CLOCK_SCRIPT], {
    env: { LC_ALL: 'C' },
    label: 'clock probe',
    onStdout: (s) => {
      buf += s;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const recv = now();
        if (waiter) {
          const w = waiter;
          waiter = undefined;
          w(`${recv} ${line}`);
        } else lines.push(`${recv} ${line}`);
      }
    },
  });
  const next = (ms = timeoutMs) =>
    new Promise<string>((resolve, reject) => {
      const queued = lines.shift();
      if (queued !== undefined) return resolve(queued);
      const timer = setTimeout(
        () => reject(conn.error(`no answer from the clock probe within ${ms / 1000} s; check the server's load`)),
        ms,
      );
      waiter = (l) => (clearTimeout(timer), resolve(l));
    });
  try {
    // shell start-up files may print first (BASH_ENV, rc files): skip to 'ready'
    for (let i = 0; !(await next(startTimeoutMs)).endsWith(' ready'); i++) {
      if (i > 100) throw conn.error("the clock probe never answered 'ready'");
    }
    const samples: ClockSample[] = [];
    for (let i = 0; i < n; i++) {
      const sendMs = now();
      proc.write('\n');
      const [recv, text] = (await next()).split(' ');
      const remoteS = Number(text);
      if (!Number.isFinite(remoteS) || remoteS < 1e9) throw conn.error(`the clock probe answered '${text}', not a time in seconds`);
      samples.push({ sendMs, recvMs: Number(recv), remoteMs: remoteS * 1000 });
    }
    return clockOffset(samples);
  } finally {
    await proc.stop(1000);
  }
}
