import { sleep } from '../../harness/util/time.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonlWriter, readJsonl } from '../../harness/store/jsonl.ts';
import type { Sample } from '../../harness/store/sample.ts';
import { InfluxSink, isoToMicros, replayRunDir } from '../../harness/store/influx.ts';
import { startInfluxd, type TestInfluxd } from '../support/influxd.ts';

let influxd: TestInfluxd;
const runDir = mkdtempSync('/tmp/mb-p-run-');

beforeAll(async () => {
  influxd = await startInfluxd();
});

afterAll(async () => {
  await influxd?.stop();
  rmSync(runDir, { recursive: true, force: true });
});

async function pointsIn(db: string, measurement: string): Promise<{ time: string; host: string; seq: number }[]> {
  const c = new InfluxDB({ host: '127.0.0.1', port: influxd.port, database: db });
  const rows = await c.queryRaw(`SELECT "seq", "host" FROM "${measurement}"`, { precision: 'u' });
  const series = rows.results?.[0]?.series?.[0];
  if (!series) return [];
  const ti = series.columns.indexOf('time');
  const si = series.columns.indexOf('seq');
  const hi = series.columns.indexOf('host');
  return series.values.map((v: unknown[]) => ({ time: String(v[ti]), seq: Number(v[si]), host: String(v[hi]) }));
}

async function count(db: string, measurement: string): Promise<number> {
  const c = new InfluxDB({ host: '127.0.0.1', port: influxd.port, database: db });
  const r = await c.query<{ count: number }>(`SELECT COUNT("seq") FROM "${measurement}"`);
  return r[0]?.count ?? 0;
}

describe('InfluxDB sink', () => {
  it('survives influxd stopped and killed for ~30 s: the database ends with exactly the run directory points', async () => {
    const url = `${influxd.url}/mbp_outage`;
    const logs: string[] = [];
    const sink = new InfluxSink(url, { runDir, requestTimeoutMs: 1500, retryMinMs: 250, retryMaxMs: 2000, log: (m) => logs.push(m) });
    const file = new JsonlWriter(join(runDir, 'samples', 'stream.jsonl'));
    let seq = 0;
    let lastMs = 0;
    let streaming = true;
    // 3 hosts x 25 samples/s, as the run writer would produce, appended to samples/ and streamed.
    const producer = (async () => {
      while (streaming) {
        for (const host of ['h1', 'h2', 'h3']) {
          lastMs = Math.max(Date.now(), lastMs + 1); // distinct timestamps per series
          const s: Sample = {
            t: new Date(lastMs).toISOString(),
            measurement: 'mbp_stream',
            tags: { host, experiment: 'mbp' },
            fields: { seq: seq++, watts: 110 + (seq % 7), note: seq % 10 ? null : 'tenth' },
          };
          file.append(s);
          sink.write(s);
        }
        await sleep(40);
      }
    })();
    await sleep(3000);
    influxd.pause(); // requests now hang until the timeout
    await sleep(15_000);
    await influxd.restart(); // SIGKILL while stopped, then a fresh start on the same data
    influxd.pause();
    await sleep(1000);
    await influxd.restart();
    // Killed with acknowledged writes in the WAL; also a connection-refused period:
    // ~16 s of hangs; now ~14 s of "connection refused":
    process.kill(influxd.pid, 'SIGKILL');
    await sleep(14_000);
    await influxd.restart();
    await sleep(4000);
    streaming = false;
    await producer;
    file.close();
    const st = await sink.close(30_000);
    expect(st.pendingOnDisk).toBe(0);
    expect(st.bufferedToDisk).toBeGreaterThan(0);
    expect(st.failures).toBeGreaterThan(0);
    // One message when it went away, one when it came back (at most one per outage episode).
    expect(logs.filter((l) => /unreachable/.test(l)).length).toBeGreaterThanOrEqual(1);
    expect(logs.filter((l) => /unreachable/.test(l)).length).toBeLessThanOrEqual(3);
    expect(logs.join('\n')).not.toMatch(/password/i);

    const written = readJsonl<Sample>(join(runDir, 'samples', 'stream.jsonl'));
    expect(written.length).toBe(seq);
    expect(await count('mbp_outage', 'mbp_stream')).toBe(written.length);
    const got = await pointsIn('mbp_outage', 'mbp_stream');
    expect(got.length).toBe(written.length);
    const key = (host: string, time: string, s: number) => `${host}|${time}|${s}`;
    const want = new Set(written.map((s) => key(s.tags.host, isoToMicros(s.t), s.fields.seq as number)));
    const have = new Set(got.map((p) => key(p.host, p.time, p.seq)));
    expect(have.size).toBe(got.length); // no duplicates
    for (const k of want) expect(have.has(k)).toBe(true);
    console.log('outage test', JSON.stringify({ points: written.length, ...st, logs }));
  });

  it('replayRunDir sends a run directory, and replaying again does not duplicate', async () => {
    const url = `${influxd.url}/mbp_replay`;
    const r1 = await replayRunDir(runDir, url);
    expect(r1.points).toBeGreaterThan(0);
    await replayRunDir(runDir, url);
    expect(await count('mbp_replay', 'mbp_stream')).toBe(r1.points);
  });

  it('replayRunDir with influxd down gives one clear error', async () => {
    await expect(replayRunDir(runDir, 'http://127.0.0.1:1/x')).rejects.toThrow(/cannot reach InfluxDB at http:\/\/127.0.0.1:1\/x/);
  });
});
