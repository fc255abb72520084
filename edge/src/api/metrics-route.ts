// GET /metrics: each model's backlog (waiting + running) for operators and autoscalers, Prometheus text or
// (?format=json) JSON, behind the operator credential OPERATOR_TOKEN. Without that secret the route does not exist.
import { errorBody } from '@sd/shared/schemas/errors';
import type { Hono } from 'hono';
import { collectBacklog, prometheusText } from '../metrics/backlog.ts';
import { type AppEnv, configOf } from './app-env.ts';
import { hasBearer } from './runner-routes.ts';

export function registerMetricsRoute(app: Hono<AppEnv>): void {
  app.get('/metrics', async (c) => {
    const config = configOf(c);
    if (!config.operatorToken) return c.json(errorBody(404, 'not_found', 'no route for GET /metrics'), 404);
    if (!hasBearer(c.req.header('authorization'), config.operatorToken)) {
      return c.json(errorBody(401, 'unauthorized', 'send Authorization: Bearer <OPERATOR_TOKEN>'), 401);
    }
    const stats = await collectBacklog(c.env, config);
    if (c.req.query('format') === 'json') return c.json({ models: stats });
    return c.text(prometheusText(stats), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
  });
}
