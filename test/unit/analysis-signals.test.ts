import { createServer, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSyntheticRun } from '../fixtures/synthetic-run.ts';
import { migbench } from '../support/cli.ts';

const dir = mkdtempSync('/tmp/mb-p-asig-');
const sockets: Socket[] = [];
afterAll(() => {
  for (const s of sockets) s.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('analysis commands end on SIGINT / SIGTERM', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)(
    'export --influx waiting on a silent server ends at %s, without printing the login',
    async (sig) => {
      const run = generateSyntheticRun(`${dir}/${sig}`);
      // an "InfluxDB" on loopback that accepts and never answers: export waits on it
      const mine: Socket[] = [];
      const server = createServer((s) => {
        mine.push(s);
        sockets.push(s);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as { port: number }).port;
      const child = migbench(['export', run, '--influx', `http://admin:s3cret@127.0.0.1:${port}/db`]);
      for (let i = 0; i < 1000 && mine.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(mine.length).toBeGreaterThan(0); // it is waiting on the server now
      const t0 = Date.now();
      child.kill(sig);
      const r = await child;
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(r.exitCode).toBe(sig === 'SIGINT' ? 130 : 143);
      expect(`${r.stdout}${r.stderr}`).not.toMatch(/s3cret/);
      for (const x of mine) x.destroy();
      server.close();
    },
    60_000,
  );
});
