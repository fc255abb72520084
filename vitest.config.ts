import { defineConfig } from 'vitest/config';

// One run covers every workspace: Node-side projects here, the edge inside workerd (edge/vitest.config.ts).
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'shared', include: ['shared/src/**/*.test.ts'], environment: 'node' } },
      {
        test: {
          name: 'gpu-runner',
          include: ['gpu-runner/src/**/*.test.ts', 'gpu-runner/training/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      'edge/vitest.config.ts',
      {
        test: {
          name: 'scripts',
          include: ['scripts/**/*.test.ts', 'bench/**/*.test.ts', 'edge/scripts/**/*.test.ts'],
          environment: 'node',
        },
      },
      { test: { name: 'e2e', include: ['test/**/*.test.ts'], testTimeout: 180_000, hookTimeout: 180_000 } },
    ],
  },
});
