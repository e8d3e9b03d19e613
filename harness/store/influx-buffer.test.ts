import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InfluxSink } from './influx.ts';

const dir = mkdtempSync('/tmp/mb-p-ibuffail-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a failing InfluxDB disk buffer', () => {
  it('is reported and counted, never an unhandled rejection that would skip cleanup', async () => {
    const rejections: unknown[] = [];
    const onRejection = (e: unknown) => rejections.push(e);
    process.on('unhandledRejection', onRejection);
    try {
      // the buffer's first segment cannot be written: its temporary name is taken by a directory (EISDIR),
      // as a full disk (ENOSPC) would make writeFileSync throw
      mkdirSync(join(dir, 'influx-buffer', '.0000000001.jsonl.tmp'), { recursive: true });
      const logs: string[] = [];
      const sink = new InfluxSink('http://127.0.0.1:9/db', { runDir: dir, flushMs: 20, requestTimeoutMs: 200, log: (m) => logs.push(m) });
      sink.write({ t: new Date().toISOString(), measurement: 'm', tags: {}, fields: { x: 1 } });
      await new Promise((r) => setTimeout(r, 400)); // the flush timer fires: send fails, buffering fails
      sink.write({ t: new Date().toISOString(), measurement: 'm', tags: {}, fields: { x: 2 } });
      const st = await sink.close();
      await new Promise((r) => setTimeout(r, 50));
      expect(rejections).toEqual([]);
      expect(st.dropped).toBe(1); // the first batch; the second got the next segment name
      expect(st.bufferedToDisk).toBe(1);
      expect(logs.join('\n')).toMatch(/cannot buffer points .*EISDIR.*samples\//);
    } finally {
      process.off('unhandledRejection', onRejection);
    }
  });
});
