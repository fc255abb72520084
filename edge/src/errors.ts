// The edge's closed set of domain errors, and the one place they become HTTP responses.
import { type ErrorIssue, errorBody, issuesFromZod } from '@sd/shared/schemas/errors';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import { ConfigError } from './config.ts';

export type DomainErrorCode =
  | 'invalid_input'
  | 'not_found'
  | 'forbidden'
  | 'conflict'
  | 'rate_limited'
  | 'unavailable'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'upstream_failed'
  | 'timeout';

const STATUS: Record<DomainErrorCode, ContentfulStatusCode> = {
  invalid_input: 422,
  not_found: 404,
  forbidden: 403,
  conflict: 409,
  rate_limited: 429,
  unavailable: 503,
  payload_too_large: 413,
  unsupported_media_type: 415,
  upstream_failed: 502,
  timeout: 504,
};

export class DomainError extends Error {
  override name = 'DomainError';
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    readonly issues?: ErrorIssue[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
  get status(): ContentfulStatusCode {
    return STATUS[this.code];
  }
}

export function invalidInput(field: string, message: string): DomainError {
  return new DomainError('invalid_input', message, [{ field, message }]);
}

export function invalidFromZod(error: ZodError, prefix = ''): DomainError {
  const issues = issuesFromZod(error, prefix);
  return new DomainError('invalid_input', issues.map((i) => i.message).join('; '), issues);
}

export function notFound(what: string): DomainError {
  return new DomainError('not_found', `${what} was not found`);
}

/** Maps any thrown value to a JSON error response; unknown errors become a generic 500 (logged by the caller). */
export interface ErrorResponse {
  status: ContentfulStatusCode;
  /** null when `response` is already complete. */
  body: ReturnType<typeof errorBody> | null;
  response?: Response;
  headers: Record<string, string>;
  known: boolean;
}

export function errorResponse(err: unknown): ErrorResponse {
  if (err instanceof DomainError) {
    return {
      status: err.status,
      body: errorBody(err.status, err.code, err.message, err.issues),
      headers: err.headers ?? {},
      known: true,
    };
  }
  if (err instanceof HTTPException && err.res) {
    // The auth and limits middleware build their own errorBody response; keep it as it is.
    return { status: err.status as ContentfulStatusCode, body: null, response: err.getResponse(), headers: {}, known: true };
  }
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    const code = status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : status === 429 ? 'rate_limited' : 'http_error';
    const headers: Record<string, string> = {};
    const retryAfter = err.res?.headers.get('Retry-After');
    if (retryAfter) headers['Retry-After'] = retryAfter;
    const wwwAuth = err.res?.headers.get('WWW-Authenticate');
    if (wwwAuth) headers['WWW-Authenticate'] = wwwAuth;
    return { status, body: errorBody(status, code, err.message || `HTTP ${status}`), headers, known: true };
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
