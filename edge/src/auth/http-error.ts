// Middleware refusals (auth, limits) as Hono expects them: an HTTPException whose answer is already built, from the
// same error contract as every other API error (shared/src/domain-error.ts), so a middleware works on any app.
import { DomainError, type ErrorCode } from '@sd/shared/domain-error';
import { HTTPException } from 'hono/http-exception';

/** An HTTPException answering the DomainError of `code` (its status from the shared table), plus `headers`. */
export function httpError(code: ErrorCode, message: string, headers: Record<string, string> = {}): HTTPException {
  const error = new DomainError(code, message, undefined, headers);
  const res = new Response(JSON.stringify(error.body()), {
    status: error.status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
  return new HTTPException(error.status, { res, message, cause: error });
}
