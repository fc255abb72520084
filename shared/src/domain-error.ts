// The error contract both services answer with: a small closed set of codes, each with its one HTTP status, and the
// DomainError that carries a code through the code to the one place per service that turns it into a response.
import type { z } from 'zod';
import { type ErrorBody, type ErrorIssue, errorBody, issuesFromZod } from './schemas/errors.ts';

/** Every error code either service answers with, and its status. */
export const ERROR_STATUS = {
  invalid_json: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  /** The edge: an idempotency key reused, a cancel that cannot apply. The runner: every slot is busy (Cog's 409). */
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  invalid_input: 422,
  rate_limited: 429,
  internal_error: 500,
  /** The operator's configuration is wrong (the message says so without echoing it). */
  misconfigured: 500,
  upstream_failed: 502,
  /** The runner: setup has not finished or failed, or it is shutting down. */
  not_ready: 503,
  /** The edge: a model's line is full. */
  unavailable: 503,
  /** A feature this deployment has not enabled. */
  not_configured: 503,
  timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;
export type ErrorStatus = (typeof ERROR_STATUS)[ErrorCode];

export class DomainError extends Error {
  override name = 'DomainError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The fields at fault (invalid input), each with its own message. */
    readonly issues?: ErrorIssue[],
    /** Headers the answer carries (Retry-After, WWW-Authenticate). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  get status(): ErrorStatus {
    return ERROR_STATUS[this.code];
  }

  /** The JSON body of the answer. */
  body(): ErrorBody {
    return errorBody(this.status, this.code, this.message, this.issues);
  }
}

/** 422 for one field. */
export function invalidInput(field: string, message: string): DomainError {
  return new DomainError('invalid_input', message, [{ field, message }]);
}

/** 422 listing every failed check of a schema, each naming its field (under `prefix`). */
export function invalidFromZod(error: z.ZodError, prefix = ''): DomainError {
  const issues = uniqueIssues(issuesFromZod(error, prefix));
  return new DomainError('invalid_input', issues.map((i) => i.message).join('; '), issues);
}

export function notFound(what: string): DomainError {
  return new DomainError('not_found', `${what} was not found`);
}

/** zod reports one message per failed check; a value that fails two checks with the same message is one issue. */
function uniqueIssues(issues: ErrorIssue[]): ErrorIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.field}\u0000${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
