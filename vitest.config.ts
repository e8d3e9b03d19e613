import { defineConfig } from 'vitest/config';

// Two projects: `unit` is pure logic (no root, no network, seconds);
// `e2e` builds real namespaces, links and guests, so its files run one at a
// time (they share the machine's two cores and the kernel's network state).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{harness,analysis,workloads}/**/*.test.ts', 'test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
