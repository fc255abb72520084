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
          TOKEN_SIGNING_SECRET: 'test-token-signing-secret',
          WEBHOOK_SIGNING_SECRET: 'whsec_dGVzdC13ZWJob29rLXNpZ25pbmctc2VjcmV0',
          // Keep test output readable; the edge logs one JSON line per event.
          LOG_LEVEL: 'error',
        },
      },
    }),
  ],
  test: { name: 'edge', include: ['src/**/*.test.ts', 'test/**/*.test.ts'] },
});
