// cors(): answers preflights and sets Access-Control-Allow-Origin only for listed origins.
// Listed = the deployment's ALLOWED_ORIGINS, plus every origin some (unrevoked) key lists, via the KV origin index.
import type { Context, MiddlewareHandler } from 'hono';
import { normalizeOrigin } from '../key-format.ts';
import { isIndexedOrigin, type KeyValueStore, kvStore } from '../key-store.ts';

/** The bindings cors() reads when no accessor is given. */
export interface CorsBindings {
  KEYS: KVNamespace;
  /** Comma- or space-separated origins, e.g. "https://app.example.com, http://localhost:5173". */
  ALLOWED_ORIGINS?: string;
}

export type CorsContext = Context<{ Bindings: CorsBindings }>;

/** Which origins are listed: the same for cors() and the origin check (origin-check.ts). */
export interface ListedOriginsOptions {
  /** Always-allowed origins. Default: parsed from the ALLOWED_ORIGINS binding. */
  allowedOrigins?: readonly string[] | ((c: CorsContext) => readonly string[]);
  /** Where the origin index lives; null disables it. Default: the KEYS binding (edge-cached for `cacheTtl`). */
  originIndex?: ((c: CorsContext) => KeyValueStore) | null;
  cacheTtl?: number;
}

export interface CorsOptions extends ListedOriginsOptions {
  allowMethods?: readonly string[];
  allowHeaders?: readonly string[];
  exposeHeaders?: readonly string[];
  /** Seconds a browser may cache a preflight answer. */
  maxAge?: number;
}

const DEFAULT_ALLOW_HEADERS = ['Authorization', 'Content-Type', 'Prefer', 'Idempotency-Key', 'Cache-Control', 'Last-Event-ID'];
/** Retry-After so the embed can tell a person when to try again after a 429. */
const DEFAULT_EXPOSE_HEADERS = ['Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'Location'];

/** Parses an ALLOWED_ORIGINS value; throws on an entry that is not an origin (a config error, seen at first request). */
export function parseAllowedOrigins(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((o) => normalizeOrigin(o));
}

/** The request's Origin header as an origin, or null (absent, "null", or not an origin). */
export function requestOrigin(c: Context): string | null {
  const raw = c.req.header('Origin');
  if (!raw || raw === 'null') return null;
  try {
    return normalizeOrigin(raw);
  } catch {
    return null;
  }
}

/** `isListed(c, origin)`: the origin is in ALLOWED_ORIGINS (or the static list) or some unrevoked key lists it. */
export function listedOrigins(options: ListedOriginsOptions = {}): (c: CorsContext, origin: string) => Promise<boolean> {
  const cacheTtl = options.cacheTtl ?? 60;
  const staticOrigins = Array.isArray(options.allowedOrigins)
    ? new Set(options.allowedOrigins.map((o) => normalizeOrigin(o)))
    : null;
  const originsOf =
    typeof options.allowedOrigins === 'function'
      ? options.allowedOrigins
      : (c: CorsContext): readonly string[] => parseAllowedOrigins(c.env.ALLOWED_ORIGINS);
  const indexOf =
    options.originIndex === undefined
      ? (c: CorsContext) => kvStore(c.env.KEYS, cacheTtl ? { cacheTtl } : {})
      : options.originIndex;
  return async function isListed(c, origin) {
    if ((staticOrigins ?? new Set(originsOf(c))).has(origin)) return true;
    return indexOf ? isIndexedOrigin(indexOf(c), origin) : false;
  };
}

/**
 * CORS middleware. A preflight from a listed origin gets 204 with the allowed methods and headers; from any other
 * origin, 204 without Access-Control-* headers (the browser then blocks the call). Actual responses, including
 * 401/429 errors, carry Access-Control-Allow-Origin for listed origins and for the origin a publishable key or user
 * token was just verified against, so a page can read why it was refused. No credentials mode: auth is a header.
 */
export function cors(options: CorsOptions = {}): MiddlewareHandler<{ Bindings: CorsBindings }> {
  const isListed = listedOrigins(options);
  const allowMethods = (options.allowMethods ?? ['GET', 'POST', 'OPTIONS']).join(', ');
  const allowHeaders = (options.allowHeaders ?? DEFAULT_ALLOW_HEADERS).join(', ');
  const exposeHeaders = (options.exposeHeaders ?? DEFAULT_EXPOSE_HEADERS).join(', ');
  const maxAge = String(options.maxAge ?? 600);

  return async function cors(c, next) {
    const origin = requestOrigin(c);

    if (c.req.method === 'OPTIONS' && c.req.header('Access-Control-Request-Method')) {
      const headers = new Headers({ Vary: 'Origin' });
      if (origin && (await isListed(c, origin))) {
        headers.set('Access-Control-Allow-Origin', origin);
        headers.set('Access-Control-Allow-Methods', allowMethods);
        headers.set('Access-Control-Allow-Headers', allowHeaders);
        headers.set('Access-Control-Max-Age', maxAge);
      }
      return new Response(null, { status: 204, headers });
    }

    await next();

    const allow = origin !== null && (c.get('principal')?.origin === origin || (await isListed(c, origin)));
    // Re-wrap: the response may be immutable (passed through from fetch). Clearing c.res first stops Hono's setter
    // from copying the old headers back over the edited ones.
    const res = new Response(c.res.body, c.res);
    const vary = res.headers.get('Vary');
    if (!vary) res.headers.set('Vary', 'Origin');
    else if (!/(^|,)\s*origin\s*(,|$)/i.test(vary)) res.headers.set('Vary', `${vary}, Origin`);
    if (allow && origin) {
      res.headers.set('Access-Control-Allow-Origin', origin);
      res.headers.set('Access-Control-Expose-Headers', exposeHeaders);
    }
    c.res = undefined;
    c.res = res;
  };
}
