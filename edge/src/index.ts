// The edge worker's entry: the Hono app for HTTP, the Cron Trigger that publishes each model's backlog (CloudWatch,
// for autoscaling from zero), and the Durable Object classes wrangler.jsonc binds.
import { createApp } from './app.ts';
import { authenticate } from './auth/authenticate/index.ts';
import { cors } from './auth/cors/index.ts';
import { tokenRoutes } from './auth/token-routes/index.ts';
import { getConfig } from './config.ts';
import { embedRoute } from './embed/embed-script.ts';
import { rateLimit } from './limits/rate-limit/index.ts';
import { collectBacklog } from './metrics/backlog.ts';
import { publishBacklog } from './metrics/cloudwatch.ts';

export { ModelQueue } from './dispatch/model-queue.ts';
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
  async scheduled(_controller: ScheduledController, env: Env): Promise<void> {
    const config = getConfig(env);
    if (!config.cloudwatch) return;
    await publishBacklog(config.cloudwatch, await collectBacklog(env, config), { endpoint: config.cloudwatch.endpoint });
  },
} satisfies ExportedHandler<Env>;
