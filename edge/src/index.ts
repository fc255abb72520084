// The edge worker's entry: the Hono app for HTTP, the queue consumer, and the Durable Object classes.
import { Hono } from 'hono';

const app = new Hono<{ Bindings: Env }>();

app.get('/health', (c) => c.json({ status: 'ok' }));

export { DurableObject as PredictionObject } from 'cloudflare:workers';
export { KeyLimiter } from './limits/key-limiter.ts';

export default {
  fetch: app.fetch,
  async queue(_batch: MessageBatch<unknown>, _env: Env): Promise<void> {},
} satisfies ExportedHandler<Env>;
