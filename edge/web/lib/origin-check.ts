// Tells "this page's origin is not allowed" from "the service cannot be reached". A browser hides why a cross-origin
// fetch failed (a CORS refusal and a dead network are the same TypeError), so after such a failure the page asks the
// edge's GET /embed/origin-check, which any origin may read, whether the edge lists this page's origin.

/** What GET /embed/origin-check answers (edge/src/auth/cors/origin-check.ts). */
export interface OriginCheck {
  origin: string | null;
  allowed: boolean;
}

/**
 * After a fetch to `api` failed without a response: the page's origin when the edge says it is not allowed, else null
 * (allowed, so the failure was something else; or the edge is unreachable too).
 */
export async function refusedOrigin(api: string, signal?: AbortSignal): Promise<string | null> {
  try {
    const response = await fetch(`${api}/embed/origin-check`, { mode: 'cors', credentials: 'omit', signal });
    if (!response.ok) return null;
    const check = (await response.json()) as OriginCheck;
    return check.allowed ? null : (check.origin ?? window.location.origin);
  } catch {
    return null;
  }
}
