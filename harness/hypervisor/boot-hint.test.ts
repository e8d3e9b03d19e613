import { describe, expect, it } from 'vitest';
import { bootFailureHint } from './boot-hint.ts';

describe('bootFailureHint', () => {
  const exited = 'VM vm1: QEMU exited with code 0 while waiting for /MB-READY/; last console lines:\n';
  it('an early exit with an empty console on a small guest: too little memory', () => {
    expect(bootFailureHint(64, exited)).toMatch(/with 64 MiB the guest is likely too small.*vms\[\]\.memory/);
  });
  it('an out-of-memory panic on a small guest', () => {
    const panic =
      'VM vm1: QEMU exited with code 0 while waiting for /MB-READY/; last console lines:\n' +
      '[    2.2] ---[ end Kernel panic - not syncing: System is deadlocked on memory ]---';
    expect(bootFailureHint(80, panic)).toMatch(/80 MiB/);
  });
  it('a workload killed by SIGKILL: its working set does not fit', () => {
    const killed = 'VM vm3: guest reported "MB-ERROR workload-exited code=137" while waiting for /MB-WORKLOAD-RUNNING/';
    expect(bootFailureHint(96, killed)).toMatch(/OOM killer.*with 96 MiB/);
    expect(bootFailureHint(96, killed.replace('137', '1'))).toBeNull();
  });
  it('no hint for a guest of 128 MiB or more, or for another failure', () => {
    expect(bootFailureHint(128, exited)).toBeNull();
    expect(bootFailureHint(64, 'VM vm1: QEMU exited with code 1: could not open disk image\nlast console lines:\n')).toBeNull();
    expect(bootFailureHint(64, `${exited}[    0.5] Run /init as init process\nMB-BOOT`)).toBeNull();
  });
});
