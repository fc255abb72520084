// The worker's whole HTTP surface: the API app (createApp) with the deployment's CORS, auth and limits middleware, plus
// the public pages and scripts outside /v1. index.ts serves it; tests list its routes (openapi.test.ts).
import type { Hono } from 'hono';
import type { AppEnv } from './api/app-env.ts';
import { createApp } from './app.ts';
import { authenticate } from './auth/authenticate/index.ts';
import { cors } from './auth/cors/index.ts';
import { originCheck } from './auth/cors/origin-check.ts';
import { tokenRoutes } from './auth/token-routes/index.ts';
import { embedRoute } from './embed/embed-script.ts';
import { rateLimit } from './limits/rate-limit/index.ts';
import { registerPlaygroundRoutes } from './playground/playground-routes.ts';

export function createWorkerApp(): Hono<AppEnv> {
  const app = createApp({
    cors: [cors()],
    auth: [authenticate(), rateLimit()],
    routes: [tokenRoutes()],
  });
  // The <sd-image> widget script: public, outside /v1 (no auth, no CORS needed for a <script src>).
  app.get('/embed.js', embedRoute);
  // Whether this page's origin is listed, readable from any origin: how the widget words a CORS refusal.
  app.get('/embed/origin-check', originCheck());
  // The playground at /: a page for a key holder to try the API and copy the request.
  registerPlaygroundRoutes(app);
  return app;
}
