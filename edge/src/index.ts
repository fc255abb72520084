// The edge worker's entry: the Hono app for HTTP, the Cron Trigger that publishes each model's backlog (CloudWatch,
// for autoscaling from zero), and the Durable Object classes wrangler.jsonc binds.
import { getConfig } from './config.ts';
import { collectBacklog } from './metrics/backlog.ts';
import { publishBacklog } from './metrics/cloudwatch.ts';
import { createWorkerApp } from './worker-app.ts';

export { ModelQueue } from './dispatch/model-queue.ts';
export { KeyLimiter } from './limits/key-limiter.ts';
export { PredictionIndex } from './predictions/prediction-index.ts';
export { PredictionObject } from './predictions/prediction-object.ts';

const app = createWorkerApp();

export default {
  fetch: app.fetch,
  async scheduled(_controller: ScheduledController, env: Env): Promise<void> {
    const config = getConfig(env);
    if (!config.cloudwatch) return;
    await publishBacklog(config.cloudwatch, await collectBacklog(env, config), { endpoint: config.cloudwatch.endpoint });
  },
} satisfies ExportedHandler<Env>;
