import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // e2e tests start real sshd/dockerd processes: keep the 2-core machine calm.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
