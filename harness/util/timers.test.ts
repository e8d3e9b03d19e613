import { describe, expect, it } from 'vitest';
import { within } from './timers.ts';

/** Pending timers and other handles of this process (vitest's own included: compared before/after). */
const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('within', () => {
  it("gives p's value and leaves no timer behind when p settles first", async () => {
    const before = timeouts();
    expect(await within(Promise.resolve(42), 60_000)).toBe(42);
    expect(timeouts()).toBe(before);
  });

  it('rejects as p rejects, and clears its timer then too', async () => {
    const before = timeouts();
    await expect(within(Promise.reject(new Error('gone')), 60_000)).rejects.toThrow('gone');
    expect(timeouts()).toBe(before);
  });

  it('gives null once the time passed first', async () => {
    const never = new Promise<number>(() => {});
    const t0 = performance.now();
    expect(await within(never, 30)).toBeNull();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
  });

  it("gives p's value as it is, undefined included", async () => {
    expect(await within(Promise.resolve(undefined), 1000)).toBeUndefined();
  });
});
