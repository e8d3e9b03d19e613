import { defineConfig } from 'vitest/config';

/**
 * e2e files that build no testbed, boot no guest and time nothing against a quiet machine: they only
 * wait (the InfluxDB outage test holds influxd down for ~30 s). `npm test` runs them beside the other
 * e2e files instead of between them (scripts/test.mjs).
 */
const BESIDE = ['test/e2e/influx.test.ts'];

// Three projects: `unit` is pure logic (no root, no network, seconds); `e2e` builds real namespaces,
// links and guests; `beside` holds the e2e files above.
export default defineConfig({
  test: {
    // e2e files share the machine's two cores and the kernel's network state;
    // `npm test` runs the unit files apart, two at a time (--fileParallelism)
    fileParallelism: false,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{harness,analysis,workloads}/**/*.test.ts', 'test/unit/**/*.test.ts'],
          // not a speed bound (those live in `npm run bench`): a report render took 4.9 s at load 7 here, at vitest's 5 s default
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          exclude: BESIDE,
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
      {
        test: {
          name: 'beside',
          include: BESIDE,
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
