// The Cog HTTP API on Hono: routes, the Prefer header semantics, and the one place where domain errors become
// status codes (onError: not ready 503, at capacity 409, invalid input 422, not found 404, unauthorized 401,
// body too large 413, body not JSON 415).

import type { HttpBindings } from '@hono/node-server';
import { errorBody } from '@sd/shared/schemas/errors';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import { bearerAuth } from './bearer-auth.ts';
import {
  AtCapacityError,
  InvalidInputError,
  NotFoundError,
  NotReadyError,
  PayloadTooLargeError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from './domain-errors.ts';
import { buildOpenApiDocument } from './openapi.ts';
import type { PredictionRecord } from './prediction-record.ts';
import type { PredictionService } from './prediction-service.ts';

export interface AppOptions {
  apiToken?: string;
  /** Largest accepted request body in bytes (MAX_REQUEST_BYTES); larger ones get 413 before they are read. */
  maxRequestBytes: number;
  /** Called by POST /shutdown (the process decides how to stop). */
  onShutdown: () => void;
}

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
    if (err instanceof PayloadTooLargeError) {
      // The connection cannot carry another request. Read and drop what the client is still sending (bounded) first:
      // closing with unread bytes makes the kernel reset the connection, and the client sees a reset, not the 413.
      c.header('Connection', 'close');
      return discardRestOfBody(c, 2 * options.maxRequestBytes, 5_000).then(() =>
        reply(413, 'payload_too_large', [{ field: '(body)', message: err.message }]),
      );
    }
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
 * Discards the unread rest of the request body, up to `limitBytes` or `timeoutMs`, whichever comes first. Only under
 * @hono/node-server, which passes the Node request as `c.env.incoming`; elsewhere there is nothing to drain.
 */
function discardRestOfBody(c: Context, limitBytes: number, timeoutMs: number): Promise<void> {
  const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
  if (!incoming || incoming.readableEnded || incoming.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => {
      clearTimeout(timer);
      incoming.off('data', onData);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > limitBytes) done();
    };
    const timer = setTimeout(done, timeoutMs);
    incoming.on('data', onData);
    incoming.once('end', done);
    incoming.once('error', done);
    incoming.once('close', done);
    incoming.resume();
  });
}
