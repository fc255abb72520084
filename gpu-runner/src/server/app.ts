// The Cog HTTP API on Hono: routes, the Prefer header semantics, and the one place where domain errors become
// status codes (onError: not ready 503, at capacity 409, invalid input 422, not found 404, unauthorized 401,
// body too large 413, body not JSON 415).

import type { HttpBindings } from '@hono/node-server';
import { errorBody } from '@sd/shared/schemas/errors';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import {
  AtCapacityError,
  InvalidInputError,
  NotFoundError,
  NotReadyError,
  PayloadTooLargeError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from '../predictions/domain-errors.ts';
import type { PredictionRecord } from '../predictions/prediction-record.ts';
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

type Prefer = { mode: 'sync' } | { mode: 'async' } | { mode: 'wait'; seconds: number };

/**
 * Cog: no Prefer = run to completion (200); `respond-async` = answer at once (202).
 * Replicate's client sends `wait[=N]` (its `wait` option): hold up to N seconds (default 60), answer 201.
 */
function parsePrefer(header: string | undefined): Prefer {
  const h = (header ?? '').toLowerCase();
  if (/\brespond-async\b/.test(h)) return { mode: 'async' };
  const wait = /\bwait(?:=(\d+))?\b/.exec(h);
  if (wait) return { mode: 'wait', seconds: Math.min(Number(wait[1] ?? 60), 600) };
  return { mode: 'sync' };
}

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

export function createApp(service: PredictionService, options: AppOptions, log: Logger): Hono {
  const app = new Hono();
  const openapi = buildOpenApiDocument();

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
    log.debug(
      {
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
        ...(id ? { prediction_id: id } : {}),
      },
      'request',
    );
  });
  app.use(bearerAuth(options.apiToken));
  app.use(
    bodyLimit({
      maxSize: options.maxRequestBytes,
      onError: (c) => {
        const declared = c.req.header('content-length');
        throw new PayloadTooLargeError(
          `request body must be at most ${options.maxRequestBytes} bytes (MAX_REQUEST_BYTES), got ${declared ?? 'more'}`,
        );
      },
    }),
  );

  app.onError(function domainErrorToResponse(err, c) {
    const reply = (status: ContentfulStatusCode, code: string, issues?: InvalidInputError['issues']) =>
      c.json(errorBody(status, code, err.message, issues), status);
    if (err instanceof InvalidInputError) return reply(422, 'invalid_input', err.issues);
    if (err instanceof AtCapacityError) return reply(409, 'conflict');
    if (err instanceof NotReadyError) return reply(503, 'not_ready');
    if (err instanceof NotFoundError) return reply(404, 'not_found');
    if (err instanceof PayloadTooLargeError) return reply(413, 'payload_too_large', [{ field: '(body)', message: err.message }]);
    if (err instanceof UnsupportedMediaTypeError)
      return reply(415, 'unsupported_media_type', [{ field: 'Content-Type', message: err.message }]);
    if (err instanceof UnauthorizedError) {
      c.header('WWW-Authenticate', 'Bearer');
      return reply(401, 'unauthorized');
    }
    log.error({ err: err.stack, path: c.req.path }, 'unhandled error');
    return c.json(errorBody(500, 'internal_error', 'internal error'), 500);
  });
  app.notFound((c) => c.json(errorBody(404, 'not_found', `no route ${c.req.method} ${c.req.path}`), 404));

  app.get('/', (c) => c.json({ docs_url: '/docs', openapi_url: '/openapi.json' }));
  app.get('/health-check', (c) => c.json(service.health()));
  // Readiness for orchestrators (Docker HEALTHCHECK, load balancers): 200 only while predictions can be served or
  // are being served; Cog's /health-check answers 200 in every state, which a probe cannot tell apart.
  app.get('/ready', (c) => {
    const { status } = service.health();
    return c.json(
      { status, ready: status === 'READY' || status === 'BUSY' },
      status === 'READY' || status === 'BUSY' ? 200 : 503,
    );
  });
  app.get('/openapi.json', (c) => c.json(openapi));

  async function readJson(c: Context): Promise<unknown> {
    // No Content-Type is tolerated (bare curl -d sends a form type, though, and that is refused with the fix named).
    const type = c.req.header('content-type');
    if (type !== undefined && !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type.trim())) {
      throw new UnsupportedMediaTypeError(`Content-Type must be application/json, got ${JSON.stringify(type.slice(0, 100))}`);
    }
    const text = await c.req.text();
    if (!text.trim()) return {};
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new InvalidInputError(`request body is not valid JSON: ${(err as Error).message}`, [
        { field: '(body)', message: 'request body is not valid JSON' },
      ]);
    }
  }

  const create = (idempotent: boolean) =>
    async function createPrediction(c: Context) {
      const body = await readJson(c);
      const { record, created } = service.submit(body, idempotent ? c.req.param('id') : undefined);
      const prefer = parsePrefer(c.req.header('prefer'));
      if (prefer.mode === 'async') return c.json(record.snapshot(), 202);
      if (prefer.mode === 'wait') {
        await waitUpTo(record, prefer.seconds);
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
  return app;
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
