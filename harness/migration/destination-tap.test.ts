import { describe, expect, it } from 'vitest';
import { destinationTap, tapName } from './placement.ts';

const done = Promise.resolve();

describe('destinationTap', () => {
  it('keeps the VM its tap name while no source of it is still quitting on the destination', () => {
    expect(destinationTap({ index: 3, tap: tapName(3) }, 'r1-h2')).toBe('mb-t3');
    expect(destinationTap({ index: 3, tap: 'mb-t3', leaving: { host: 'r1-h1', tap: 'mb-t3', done } }, 'r1-h2')).toBe('mb-t3');
  });

  it('never takes the tap the last move left on the destination: ping-pong switches names every other move', () => {
    // h1 -> h2 with mb-t0 on both, then back to h1 where the source QEMU (mb-t0) may still be quitting
    let vm = { index: 0, tap: 'mb-t0', leaving: undefined as { host: string; tap: string; done: Promise<void> } | undefined };
    let at = 'r1-h1';
    const used: string[] = [];
    for (let i = 0; i < 4; i++) {
      const to = at === 'r1-h1' ? 'r1-h2' : 'r1-h1';
      const tap = destinationTap(vm, to);
      if (vm.leaving?.host === to) expect(tap).not.toBe(vm.leaving.tap);
      used.push(tap);
      vm = { index: 0, tap, leaving: { host: at, tap: vm.tap, done } };
      at = to;
    }
    expect(used).toEqual(['mb-t0', 'mb-t0b', 'mb-t0b', 'mb-t0']);
    for (const t of used) expect(t.length).toBeLessThanOrEqual(15); // IFNAMSIZ
  });
});
