// Assembles the edge's Hono app. Auth and CORS come in as middleware (edge/src/auth/), so tests and the worker
// entry choose them explicitly; routes that authenticate otherwise (stream token, runner HMAC) are mounted before them.

import { DomainError } from '@sd/shared/domain-error';
import { errorBody } from '@sd/shared/schemas/errors';
import { Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { registerA1111Routes } from './api/a1111/a1111-routes.ts';
import { type AppEnv, configOf } from './api/app-env.ts';
import { registerFileRoutes } from './api/files-routes.ts';
import { MAX_BODY_BYTES } from './api/json-body.ts';
import { registerMetricsRoute } from './api/metrics-route.ts';
import { registerModelRoutes } from './api/models-routes.ts';
import { registerOpenAIRoutes } from './api/openai-routes.ts';
import { openApiDocument } from './api/openapi.ts';
import { registerPredictionRoutes, registerStreamRoute } from './api/predictions-routes.ts';
import { registerRunnerRoutes } from './api/runner-routes.ts';
import { registerRunnerWebhookRoute } from './api/runner-webhook-route.ts';
import { errorResponse } from './error-response.ts';
import { errorFields, logger } from './log.ts';

// Hono's MiddlewareHandler and Hono types are invariant in their Env; the auth and limits middleware declare only the
// bindings they read (a subset of Env), so they are accepted as any-Env handlers here.
// biome-ignore lint/suspicious/noExplicitAny: see above
type AnyEnvMiddleware = MiddlewareHandler<any>;
// biome-ignore lint/suspicious/noExplicitAny: see above
type AnyEnvApp = Hono<any>;

export interface AppOptions {
  /** Runs on every /v1/* request first (CORS answers preflights here). */
  cors?: AnyEnvMiddleware[];
  /** Sets c.var.principal or throws 401/403; required, so an app is never assembled open by accident. */
  auth: AnyEnvMiddleware[];
  /** Sub-apps mounted after auth (e.g. POST /v1/tokens). */
  routes?: AnyEnvApp[];
}

export function createApp(options: AppOptions): Hono<AppEnv> {
  if (options.auth.length === 0) throw new Error('createApp needs at least one auth middleware');
  const app = new Hono<AppEnv>();

  app.onError((err, c) => {
    const { status, body, response, headers, known } = errorResponse(err);
    const log = logger({ component: 'api', method: c.req.method, path: c.req.path });
    // The invocation's own log (Workers Logs) already has the status; the refusal's detail is for debugging.
    if (known) log.debug('request refused', { status, code: body?.error.code });
    else log.error('unhandled error', { ...errorFields(err), stack: err instanceof Error ? err.stack : undefined });
    if (response) return response;
    return c.json(body, status, headers);
  });
  app.notFound((c) => c.json(errorBody(404, 'not_found', `no route for ${c.req.method} ${c.req.path}`), 404));

  // Before anything reads a body: a declared or streamed body past the cap is refused unread.
  const capBody = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: (c) => {
      throw new DomainError(
        'payload_too_large',
        `request body must be at most ${MAX_BODY_BYTES} bytes, got ${c.req.header('content-length') ?? 'more'}`,
        [{ field: '(body)', message: `request body must be at most ${MAX_BODY_BYTES} bytes` }],
      );
    },
  });
  app.use('/v1/*', capBody);
  app.use('/sdapi/*', capBody);
  app.use('/internal/*', capBody);
  app.use('/runner/*', capBody);

  app.get('/health', (c) => c.json({ status: 'ok' }));
  app.get('/openapi.json', (c) => c.json(openApiDocument(configOf(c).publicBaseUrl)));
  registerRunnerWebhookRoute(app);
  registerRunnerRoutes(app);
  registerMetricsRoute(app);

  for (const mw of options.cors ?? []) {
    app.use('/v1/*', mw);
    app.use('/sdapi/*', mw);
  }
  registerStreamRoute(app);
  for (const mw of options.auth) {
    app.use('/v1/*', mw);
    app.use('/sdapi/*', mw);
  }
  registerPredictionRoutes(app);
  registerOpenAIRoutes(app);
  registerFileRoutes(app);
  registerModelRoutes(app);
  registerA1111Routes(app);
  for (const sub of options.routes ?? []) app.route('/', sub);
  return app;
}
