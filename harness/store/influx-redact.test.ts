import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { InfluxSink, parseInfluxUrl, replayRunDir } from './influx.ts';

const dir = mkdtempSync('/tmp/mb-p-iredact-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('InfluxDB credentials are never stored or printed', () => {
  it("the sink's url (what the manifest records as influx.url) has no login; the login is still used", async () => {
    const logs: string[] = [];
    const sink = new InfluxSink('http://admin:s3cret@127.0.0.1:9/runs', { runDir: dir, log: (m) => logs.push(m), requestTimeoutMs: 200 });
    expect(sink.url).toBe('http://127.0.0.1:9/runs');
    sink.write({ t: new Date().toISOString(), measurement: 'm', tags: {}, fields: { x: 1 } });
    await sink.flush(); // port 9 refuses: the sink logs that it is unreachable
    const st = await sink.close();
    const manifestEntry = JSON.stringify({ url: sink.url, ...st });
    expect(manifestEntry).not.toMatch(/s3cret|admin/);
    expect(logs.join('\n')).not.toMatch(/s3cret|admin/);
    expect(logs.join('\n')).toMatch(/unreachable/);
    expect(parseInfluxUrl('http://admin:s3cret@h/db')).toMatchObject({ username: 'admin', password: 's3cret' });
  });
  it('error messages about a bad URL do not echo the password', () => {
    expect(() => parseInfluxUrl('ftp://admin:s3cret@h/db')).toThrow(/must start with http/);
    try {
      parseInfluxUrl('http://admin:s3cret@h:99999/db');
    } catch (e) {
      expect((e as Error).message).not.toMatch(/s3cret/);
      return;
    }
    throw new Error('expected a bad port to be refused');
  });
  it('export to an unreachable server names the server without the login', async () => {
    const run = mkdtempSync(`${dir}/run-`);
    mkdirSync(`${run}/samples`);
    writeFileSync(
      `${run}/samples/m.jsonl`,
      JSON.stringify({ t: new Date().toISOString(), measurement: 'm', tags: {}, fields: { x: 1 } }) + '\n',
    );
    const err = await replayRunDir(run, 'http://admin:s3cret@127.0.0.1:9/db', { requestTimeoutMs: 500 }).catch((e: Error) => e);
    expect(String((err as Error).message)).toMatch(/cannot reach InfluxDB at http:\/\/127.0.0.1:9\/db/);
    expect(String((err as Error).message)).not.toMatch(/s3cret|admin/);
  });
  it('the login can come from the environment instead of the URL', () => {
    process.env.MIGBENCH_INFLUX_USER = 'envuser';
    process.env.MIGBENCH_INFLUX_PASSWORD = 'envpw';
    try {
      expect(parseInfluxUrl('http://h:8086/db')).toMatchObject({ username: 'envuser', password: 'envpw' });
    } finally {
      delete process.env.MIGBENCH_INFLUX_USER;
      delete process.env.MIGBENCH_INFLUX_PASSWORD;
    }
  });
});
