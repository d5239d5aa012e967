// Tests are compiled by tsc (Node 20 cannot load .ts, and the device worker
// must run the same JavaScript the tests import), so vitest runs dist/.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['dist/test/**/*.test.js'],
    exclude: ['dist/test/bench/**'],
    testTimeout: 20000,
    hookTimeout: 20000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
