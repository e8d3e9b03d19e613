import { describe, expect, it } from 'vitest';
import { HeartbeatCheck } from './heartbeat-check.ts';

/** A console whose next workload report (or end) the test decides. */
function fakeConsole() {
  let settle!: (ok: boolean) => void;
  const line = new Promise<string>((resolve, reject) => {
    settle = (ok) => (ok ? resolve('MB-DIRTY rate=1') : reject(new Error('QEMU exited')));
  });
  const calls: RegExp[] = [];
  return {
    console: {
      waitForSerial: (re: RegExp) => {
        calls.push(re);
        return line;
      },
    },
    report: () => settle(true),
    end: () => settle(false),
    calls,
  };
}

describe('heartbeat check after a move', () => {
  it('is null without a workload and never reads the console', async () => {
    const c = fakeConsole();
    expect(await new HeartbeatCheck(c.console, false).verdict).toBeNull();
    expect(c.calls).toHaveLength(0);
  });

  it('holds once the destination console shows a workload report', async () => {
    const c = fakeConsole();
    const check = new HeartbeatCheck(c.console, true);
    c.report();
    expect(await check.verdict).toBe(true);
    expect(c.calls[0].test('MB-STRESS ops=3')).toBe(true);
  });

  it('fails when the console ends (or times out) without a report and the guest did not move on', async () => {
    const c = fakeConsole();
    const check = new HeartbeatCheck(c.console, true);
    c.end();
    expect(await check.verdict).toBe(false);
  });

  it('lets the next console decide when the guest moved on before reporting here', async () => {
    const first = fakeConsole();
    const second = fakeConsole();
    const check = new HeartbeatCheck(first.console, true);
    const next = new HeartbeatCheck(second.console, true);
    check.movedOn(next);
    first.end(); // the next migration ended this console before a report came
    second.report();
    expect(await check.verdict).toBe(true);
    expect(await next.verdict).toBe(true);
  });

  it('fails when neither console shows a report', async () => {
    const first = fakeConsole();
    const second = fakeConsole();
    const check = new HeartbeatCheck(first.console, true);
    check.movedOn(new HeartbeatCheck(second.console, true));
    first.end();
    second.end();
    expect(await check.verdict).toBe(false);
  });

  it('keeps its own report even when the next console fails', async () => {
    const first = fakeConsole();
    const second = fakeConsole();
    const check = new HeartbeatCheck(first.console, true);
    check.movedOn(new HeartbeatCheck(second.console, true));
    first.report();
    second.end();
    expect(await check.verdict).toBe(true);
  });
});
