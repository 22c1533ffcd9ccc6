import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Integration tests start real servers and pods; two at a time fits 2 cores.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
