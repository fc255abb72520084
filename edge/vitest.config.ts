// Edge tests run inside workerd with the real KV, Queue, Durable Object and Cache bindings of wrangler.jsonc.
import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.jsonc' },
      miniflare: {
        bindings: {
          RUNNER_WEBHOOK_SECRET: 'test-runner-webhook-secret',
          RUNNER_TOKEN: 'test-runner-token',
          PUSH_TARGET_TOKEN: 'test-push-target-token',
          TOKEN_SIGNING_SECRET: 'test-token-signing-secret',
          WEBHOOK_SIGNING_SECRET: 'whsec_dGVzdC13ZWJob29rLXNpZ25pbmctc2VjcmV0',
          // Keep test output readable; the edge logs one JSON line per event.
          LOG_LEVEL: 'error',
          // The tests fake a push target at 127.0.0.1:5000 (fakeNetwork) that takes every prediction at once, and
          // leave many unfinished: room for all of them, so each test's prediction is pushed as soon as it is made.
          MODELS: JSON.stringify([
            {
              id: 'sd/embedded',
              version: 'embedded-v5',
              backend: 'cog',
              runners: ['http://127.0.0.1:5000'],
              pushSlots: 1000,
              tokenizer: 'embedded-v5',
            },
            { id: 'sd/pulled', version: 'v1', runners: [], tokenizer: 'embedded-v5', maxQueueSeconds: 4, maxBacklog: 3 },
          ]),
          // Pull leases in these tests expire fast, so a lost runner is noticed within the test.
          LEASE_TTL_SECONDS: '2',
          OPERATOR_TOKEN: 'test-operator-token',
        },
      },
    }),
  ],
  // Some tests send a hundred requests through workerd; on a loaded 2-core machine that passes vitest's 5 s default.
  // Nothing here measures speed (that is `npm run bench`), so a test gets room to finish.
  test: { name: 'edge', include: ['src/**/*.test.ts', 'test/**/*.test.ts'], testTimeout: 30_000 },
});
