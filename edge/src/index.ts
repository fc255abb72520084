// The edge worker's entry: the Hono app for HTTP, the queue consumers (jobs and their dead letters), and the
// Durable Object classes wrangler.jsonc binds.
import { defaultCache } from './api/app-env.ts';
import { createApp } from './app.ts';
import { authenticate } from './auth/authenticate/index.ts';
import { cors } from './auth/cors/index.ts';
import { tokenRoutes } from './auth/routes.ts';
import { getConfig } from './config.ts';
import { consumeDeadLetters, consumeJobs } from './dispatch/queue-consumer.ts';
import { embedRoute } from './embed/embed-script.ts';
import { rateLimit } from './limits/rate-limit/index.ts';

export { KeyLimiter } from './limits/key-limiter.ts';
export { PredictionIndex } from './predictions/prediction-index.ts';
export { PredictionObject } from './predictions/prediction-object.ts';

const app = createApp({
  cors: [cors()],
  auth: [authenticate(), rateLimit()],
  routes: [tokenRoutes()],
});
// The <sd-image> widget script: public, outside /v1 (no auth, no CORS needed for a <script src>).
app.get('/embed.js', embedRoute);

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
    if (batch.queue.endsWith('-dlq')) {
      await consumeDeadLetters(batch, env);
      return;
    }
    await consumeJobs(batch, env, getConfig(env), { fetch: (input, init) => fetch(input, init), cache: defaultCache() });
  },
} satisfies ExportedHandler<Env>;
