// The Cog HTTP API on Hono: routes, the Prefer header semantics, the parsing of a request into what the prediction
// service takes, and the one place where errors become responses (onError: the shared DomainError's code decides
// the status; anything else is a logged 500).

import type { HttpBindings } from '@hono/node-server';
import { DomainError } from '@sd/shared/domain-error';
import { errorMessage, errorStack } from '@sd/shared/error-message';
import { parsePrefer } from '@sd/shared/prefer';
import { errorBody } from '@sd/shared/schemas/errors';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Logger } from 'pino';
import type { PredictionRecord } from '../predictions/prediction-record.ts';
import { parsePredictionRequest } from '../predictions/prediction-request.ts';
import type { PredictionService } from '../predictions/prediction-service.ts';
import { bearerAuth } from './bearer-auth.ts';
import { buildOpenApiDocument } from './openapi.ts';

export interface AppOptions {
  apiToken?: string;
  /** Largest accepted request body in bytes (MAX_REQUEST_BYTES); larger ones get 413 before they are read. */
  maxRequestBytes: number;
  /** Called by POST /shutdown (the process decides how to stop). */
  onShutdown: () => void;
}

/** How long an answer waits for the rest of a body it does not need (a client on a slow link sending megabytes). */
const DRAIN_TIMEOUT_MS = 10_000;

async function waitUpTo(record: PredictionRecord, seconds: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    record.finished,
    new Promise((resolve) => {
      timer = setTimeout(resolve, seconds * 1000);
    }),
  ]);
  clearTimeout(timer);
}

/** The request body as JSON. No Content-Type is tolerated; another type is refused with the fix named. */
async function readJson(c: Context): Promise<unknown> {
  // Bare curl -d sends a form type: it is refused, naming the header to send.
  const type = c.req.header('content-type');
  if (type !== undefined && !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type.trim())) {
    const message = `Content-Type must be application/json, got ${JSON.stringify(type.slice(0, 100))}`;
    throw new DomainError('unsupported_media_type', message, [{ field: 'Content-Type', message }]);
  }
  const text = await c.req.text();
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DomainError('invalid_input', `request body is not valid JSON: ${errorMessage(err)}`, [
      { field: '(body)', message: 'request body is not valid JSON' },
    ]);
  }
}

export function createApp(service: PredictionService, options: AppOptions, log: Logger): Hono {
  const app = new Hono();
  useTransportMiddleware(app, options, log);
  app.onError(function errorToResponse(err, c) {
    if (err instanceof DomainError) {
      for (const [name, value] of Object.entries(err.headers ?? {})) c.header(name, value);
      return c.json(err.body(), err.status);
    }
    log.error({ err: errorStack(err), path: c.req.path }, 'unhandled error');
    return c.json(errorBody(500, 'internal_error', 'internal error'), 500);
  });
  app.notFound((c) => c.json(errorBody(404, 'not_found', `no route ${c.req.method} ${c.req.path}`), 404));
  registerHealthRoutes(app, service);
  registerPredictionRoutes(app, service, options);
  return app;
}

/** Body draining, request logs, the bearer token and the body cap, outermost first. */
function useTransportMiddleware(app: Hono, options: AppOptions, log: Logger): void {
  // Outermost: whatever the answer (a 401 before the body was looked at, a 404, 413, 415 or 422), the rest of the
  // body is read (bounded) before it goes out. A server that answers and closes with unread bytes makes the kernel
  // reset the connection, and a client still sending sees the reset instead of the status.
  app.use(async function finishReadingBody(c, next) {
    await next();
    const complete = await discardRestOfBody(c, 2 * options.maxRequestBytes, DRAIN_TIMEOUT_MS);
    if (!complete) {
      // Past the bound: the connection cannot carry another request, so say it will close.
      c.header('Connection', 'close');
      log.warn({ path: c.req.path, status: c.res.status }, 'request body not read to its end; closing the connection');
    }
  });
  app.use(async function requestLog(c, next) {
    const started = performance.now();
    await next();
    const id = c.req.path.match(/^\/predictions\/([^/]+)/)?.[1];
    const fields = { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) };
    log.debug({ ...fields, ...(id ? { prediction_id: id } : {}) }, 'request');
  });
  app.use(bearerAuth(options.apiToken));
  app.use(
    bodyLimit({
      maxSize: options.maxRequestBytes,
      onError: (c) => {
        const declared = c.req.header('content-length');
        const message = `request body must be at most ${options.maxRequestBytes} bytes (MAX_REQUEST_BYTES), got ${declared ?? 'more'}`;
        throw new DomainError('payload_too_large', message, [{ field: '(body)', message }]);
      },
    }),
  );
}

function registerHealthRoutes(app: Hono, service: PredictionService): void {
  const openapi = buildOpenApiDocument();
  app.get('/', (c) => c.json({ docs_url: '/docs', openapi_url: '/openapi.json' }));
  app.get('/health-check', (c) => c.json(service.health()));
  // Readiness for orchestrators (Docker HEALTHCHECK, load balancers): 200 only while predictions can be served or
  // are being served; Cog's /health-check answers 200 in every state, which a probe cannot tell apart.
  app.get('/ready', (c) => {
    const { status } = service.health();
    const ready = status === 'READY' || status === 'BUSY';
    return c.json({ status, ready }, ready ? 200 : 503);
  });
  app.get('/openapi.json', (c) => c.json(openapi));
}

function registerPredictionRoutes(app: Hono, service: PredictionService, options: AppOptions): void {
  const create = (idempotent: boolean) =>
    async function createPrediction(c: Context) {
      const request = parsePredictionRequest(await readJson(c), idempotent ? c.req.param('id') : undefined);
      const { record, created } = service.submit(request);
      // Cog: no Prefer = run to completion (200); respond-async = answer at once (202). Replicate's client sends
      // wait[=N] (its `wait` option): hold up to N seconds, answer 201.
      const prefer = parsePrefer(c.req.header('prefer'));
      if (prefer.respondAsync) return c.json(record.snapshot(), 202);
      if (prefer.waitSeconds !== null) {
        await waitUpTo(record, prefer.waitSeconds);
        return c.json(record.snapshot(), created ? 201 : 200);
      }
      return c.json(await record.finished, 200);
    };
  app.post('/predictions', create(false));
  app.put('/predictions/:id', create(true));
  app.get('/predictions/:id', (c) => c.json(service.get(c.req.param('id')).snapshot()));
  app.post('/predictions/:id/cancel', (c) => c.json(service.cancel(c.req.param('id')).snapshot()));
  app.post('/shutdown', (c) => {
    options.onShutdown();
    return c.json({ status: 'shutting down' });
  });
}

/**
 * Reads and drops the unread rest of the request body, up to `limitBytes` or `timeoutMs`, whichever comes first;
 * resolves true if the body was read to its end. Through the Request's own stream when nothing has locked it (under
 * @hono/node-server that stream sits on the Node request and pauses it when nobody reads, so reading the Node request
 * directly would stall); through the Node request (`c.env.incoming`) when a middleware holds the stream's reader.
 */
async function discardRestOfBody(c: Context, limitBytes: number, timeoutMs: number): Promise<boolean> {
  const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
  if (incoming && (incoming.readableEnded || incoming.destroyed)) return !incoming.destroyed;
  if (c.req.method === 'GET' || c.req.method === 'HEAD') return true;
  const body = c.req.raw.body;
  if (body && !body.locked) {
    const reader = body.getReader();
    const timer = setTimeout(() => void reader.cancel().catch(() => {}), timeoutMs);
    let seen = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return true;
        seen += value.byteLength;
        if (seen > limitBytes) return false;
      }
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
      reader.releaseLock();
    }
  }
  if (!incoming) return true; // not under Node: nothing to drain
  return new Promise((resolve) => {
    let seen = 0;
    const done = (complete: boolean) => {
      clearTimeout(timer);
      incoming.off('data', onData);
      resolve(complete);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > limitBytes) done(false);
      // The Request's stream pauses the Node request when its queue is full; nobody reads that queue any more.
      else incoming.resume();
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    incoming.on('data', onData);
    incoming.once('end', () => done(true));
    incoming.once('error', () => done(false));
    incoming.once('close', () => done(incoming.readableEnded));
    incoming.resume();
  });
}
