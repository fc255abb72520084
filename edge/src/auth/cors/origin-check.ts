// GET /embed/origin-check: whether the edge lists the calling page's Origin, readable by any page. A browser hides why
// a cross-origin fetch failed, so the <sd-image> widget asks this after a failure to tell a person "this page's origin
// is not allowed" rather than "could not reach the service". It names only the caller's own origin, never the list.
import type { Handler } from 'hono';
import { type CorsBindings, type CorsContext, type ListedOriginsOptions, listedOrigins, requestOrigin } from './index.ts';

/** The answer's body. */
export interface OriginCheckAnswer {
  /** The request's Origin, normalized; null when it sent none. */
  origin: string | null;
  /** Whether cors() answers this origin's preflights (ALLOWED_ORIGINS, or some unrevoked key lists it). */
  allowed: boolean;
}

/**
 * The route handler. The answer carries `Access-Control-Allow-Origin: *` (no credentials, a simple GET: no preflight),
 * so a page cors() refuses can still read it; CORS for every other route is unchanged.
 */
export function originCheck(options: ListedOriginsOptions = {}): Handler<{ Bindings: CorsBindings }> {
  const isListed = listedOrigins(options);
  return async function originCheck(c) {
    const origin = requestOrigin(c);
    const body: OriginCheckAnswer = { origin, allowed: origin !== null && (await isListed(c as CorsContext, origin)) };
    return c.json(body, 200, {
      'Access-Control-Allow-Origin': '*',
      'Cache-Control': 'no-store',
      Vary: 'Origin',
      'X-Content-Type-Options': 'nosniff',
    });
  };
}
