// The one place the edge turns a thrown value into an HTTP answer: the shared DomainError's code decides the status
// (shared/src/domain-error.ts); middleware's HTTPExceptions carry their own answer; anything else is a generic 500.
import { DomainError } from '@sd/shared/domain-error';
import { type ErrorBody, errorBody } from '@sd/shared/schemas/errors';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ConfigError } from './config.ts';

export interface ErrorResponse {
  status: ContentfulStatusCode;
  /** null when `response` is already complete. */
  body: ErrorBody | null;
  response?: Response;
  headers: Record<string, string>;
  /** A refusal the edge meant (logged at debug); false: a bug or an outage (logged as an error). */
  known: boolean;
}

/** Maps any thrown value to a JSON error response; unknown errors become a generic 500 (logged by the caller). */
export function errorResponse(err: unknown): ErrorResponse {
  if (err instanceof DomainError) {
    return { status: err.status, body: err.body(), headers: err.headers ?? {}, known: true };
  }
  if (err instanceof HTTPException && err.res) {
    // Middleware (auth, limits) answers with the body of its DomainError already built (auth/http-error.ts).
    return { status: err.status as ContentfulStatusCode, body: null, response: err.getResponse(), headers: {}, known: true };
  }
  if (err instanceof HTTPException) {
    // Hono's own (e.g. a malformed request its helpers refuse): the nearest code of the contract.
    const status = err.status as ContentfulStatusCode;
    const code = status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : status === 429 ? 'rate_limited' : 'http_error';
    return { status, body: errorBody(status, code, err.message || `HTTP ${status}`), headers: {}, known: true };
  }
  if (err instanceof ConfigError) {
    // The operator's mistake, not the caller's: say so without echoing config values.
    return {
      status: 500,
      body: errorBody(500, 'misconfigured', 'the edge is misconfigured; see its logs'),
      headers: {},
      known: false,
    };
  }
  return { status: 500, body: errorBody(500, 'internal_error', 'internal error'), headers: {}, known: false };
}
