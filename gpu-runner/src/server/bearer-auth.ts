// Bearer-token check for the runner's API: every route but the health and readiness checks when API_TOKEN is set.

import { DomainError } from '@sd/shared/domain-error';
import { timingSafeEqual } from '@sd/shared/webhook-signature';
import type { MiddlewareHandler } from 'hono';

/** Builds the middleware; without a token it lets everything through (a runner on a private network). */
export function bearerAuth(
  token: string | undefined,
  openPaths: readonly string[] = ['/health-check', '/ready'],
): MiddlewareHandler {
  return async function bearerAuthHandler(c, next) {
    if (!token || openPaths.includes(c.req.path)) return next();
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match) throw unauthorized('Authorization: Bearer <API_TOKEN> is required');
    // Constant-time: a timing side channel must not reveal a prefix of the token.
    if (!timingSafeEqual(match[1].trim(), token)) throw unauthorized('the bearer token is not valid for this runner');
    return next();
  };
}

function unauthorized(message: string): DomainError {
  return new DomainError('unauthorized', message, undefined, { 'WWW-Authenticate': 'Bearer' });
}
