import { defineConfig } from 'vitest/config';

const testbed = './test/env/globalSetup.ts';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['api/**/*.test.ts', 'src/**/*.test.ts', 'test/env/**/*.test.ts', 'test/ops/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', 'node_modules/**'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'src/**/*.int.test.ts'],
          globalSetup: [testbed],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: [testbed],
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
