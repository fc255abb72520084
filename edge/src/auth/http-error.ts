// HTTPExceptions carrying the shared JSON error body, so auth and limit failures look like every other API error.
import { errorBody } from '@sd/shared/schemas/errors';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** An HTTPException whose response is errorBody(status, code, message) plus `headers`. */
export function httpError(
  status: ContentfulStatusCode,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): HTTPException {
  const res = new Response(JSON.stringify(errorBody(status, code, message)), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
  return new HTTPException(status, { res, message });
}
