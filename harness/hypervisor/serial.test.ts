import { describe, expect, it } from 'vitest';
import { SerialConsole, classifySerialLine, cleanSerialLine } from './serial.ts';

describe('serial console', () => {
  it('classifies kernel trouble and ignores our own markers', () => {
    expect(classifySerialLine('[   12.3] Kernel panic - not syncing: Attempted to kill init!')).toBe('panic');
    expect(classifySerialLine('Oops: 0000 [#1] PREEMPT SMP NOPTI')).toBe('oops');
    expect(classifySerialLine('BUG: unable to handle page fault for address: 0000')).toBe('bug');
    expect(classifySerialLine('general protection fault, probably for non-canonical address')).toBe('gpf');
    expect(classifySerialLine('WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:123')).toBe('warning');
    expect(classifySerialLine('MB-DIRTY up=1.000 pages_s=6400')).toBeNull();
    expect(classifySerialLine('MB-READY vm=a ip=none')).toBeNull();
  });

  it('strips terminal escapes and CRs', () => {
    expect(cleanSerialLine('/ # \x1b[6nMB-DIRTY up=1\r')).toBe('/ # MB-DIRTY up=1');
  });

  it('waits for markers across chunk boundaries, from a mark, and records problems', async () => {
    const s = new SerialConsole('vm1');
    s.push('boot\r\nMB-REA');
    const ready = s.waitFor(/MB-READY vm=(\S+)/, 1000);
    s.push('DY vm=vm1 ip=none\r\nOops: 0002 [#1]\r\n');
    expect(await ready).toBe('MB-READY vm=vm1 ip=none');
    expect(await s.waitFor(/boot/, 10)).toBe('boot'); // already seen lines count by default
    const m = s.mark();
    await expect(s.waitFor(/boot/, 30, m)).rejects.toThrow(/not seen on the serial console within 30 ms/);
    expect(s.problemsSeen().map((p) => p.kind)).toEqual(['oops']);
  });

  it('fails waits at once on MB-ERROR and when the stream ends', async () => {
    const s = new SerialConsole('vm1');
    const w = s.waitFor(/MB-READY/, 10_000);
    s.push('MB-ERROR no-nic vm=vm1\n');
    await expect(w).rejects.toThrow(/no-nic.*tap device/);
    const w2 = s.waitFor(/MB-WORKLOAD-RUNNING/, 10_000);
    s.end('QEMU exited with code 1');
    await expect(w2).rejects.toThrow(/QEMU exited with code 1 while waiting/);
    await expect(s.waitFor(/never/, 10_000)).rejects.toThrow(/never appeared/);
  });
});
