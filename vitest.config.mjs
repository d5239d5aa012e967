// Tests are compiled by tsc (Node 20 cannot load .ts, and the device worker
// must run the same JavaScript the tests import), so vitest runs dist/.
//
// Coverage (v8) is measured on the compiled dist/**/*.js the tests run and
// mapped back to the TypeScript sources through tsc's source maps, so the
// report names core/virtio.ts, not dist/core/virtio.js. The thresholds make
// the run fail below them; test/coverage/check-seed.ts then requires
// every branch of the noirq patch's functions to be covered.
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
    coverage: {
      provider: 'v8',
      include: ['dist/core/**/*.js', 'dist/transports/**/*.js'],
      reporter: ['text-summary', 'json', 'json-summary'],
      reportsDirectory: 'coverage',
      thresholds: {
        // Each matching file on its own, not the average of a folder.
        perFile: true,
        'core/virtio.ts': { branches: 95 },
        'core/pm/**': { branches: 95 },
        'transports/mmio/**': { branches: 95 },
      },
    },
  },
});
