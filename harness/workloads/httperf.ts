/**
 * httperf against a guest's web service (Kherbache et al. ran it at 100 and
 * 200 req/s): argument building and summary parsing. Time series come from
 * running httperf in short consecutive windows (one summary per window).
 */
export interface HttperfRun {
  /** Guest address. */
  server: string;
  port?: number;
  uri: string;
  /** Connections (one request each) per second. */
  rate: number;
  /** Connections to open in total (rate x window length). */
  numConns: number;
  timeoutS: number;
}

export interface HttperfSummary {
  connections: number;
  requests: number;
  replies: number;
  testDurationS: number;
  /** replies / test duration (httperf's own "Reply rate" needs >= 5 s windows). */
  replyRate: number;
  requestRate: number;
  /** Mean connection lifetime (connect to close), ms. */
  connMsAvg: number | null;
  connMsMax: number | null;
  connMsMin: number | null;
  /** Mean time from request sent to first reply byte, ms. */
  responseMs: number | null;
  status2xx: number;
  errors: number;
  clientTimeouts: number;
  connRefused: number;
  connReset: number;
}

export function httperfArgs(r: HttperfRun): string[] {
  if (!(r.rate > 0)) throw new Error(`httperf rate must be > 0 (got ${r.rate})`);
  return [
    '--server',
    r.server,
    '--port',
    String(r.port ?? 80),
    '--uri',
    r.uri,
    '--rate',
    String(r.rate),
    '--num-conns',
    String(Math.max(1, Math.round(r.numConns))),
    '--num-calls',
    '1',
    '--timeout',
    String(r.timeoutS),
    '--hog',
  ];
}

function num(text: string, re: RegExp): number | null {
  const m = re.exec(text);
  return m ? Number(m[1]) : null;
}

/** Parses httperf's end-of-run summary; null when the text has none (httperf failed to run). */
export function parseHttperf(text: string): HttperfSummary | null {
  const total = /Total: connections (\d+) requests (\d+) replies (\d+) test-duration ([\d.]+) s/.exec(text);
  if (!total) return null;
  const [connections, requests, replies, dur] = total.slice(1).map(Number);
  const conn = /Connection time \[ms\]: min ([\d.]+) avg ([\d.]+) max ([\d.]+)/.exec(text);
  const errors = num(text, /Errors: total (\d+)/) ?? 0;
  return {
    connections,
    requests,
    replies,
    testDurationS: dur,
    replyRate: dur > 0 ? replies / dur : 0,
    requestRate: num(text, /Request rate: ([\d.]+) req\/s/) ?? 0,
    connMsMin: conn && replies > 0 ? Number(conn[1]) : null,
    connMsAvg: conn && replies > 0 ? Number(conn[2]) : null,
    connMsMax: conn && replies > 0 ? Number(conn[3]) : null,
    responseMs: replies > 0 ? num(text, /Reply time \[ms\]: response ([\d.]+)/) : null,
    status2xx: num(text, /Reply status: 1xx=\d+ 2xx=(\d+)/) ?? 0,
    errors,
    clientTimeouts: num(text, /client-timo (\d+)/) ?? 0,
    connRefused: num(text, /connrefused (\d+)/) ?? 0,
    connReset: num(text, /connreset (\d+)/) ?? 0,
  };
}
