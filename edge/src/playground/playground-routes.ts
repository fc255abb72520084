// GET / (the playground page), /playground.js and /playground.css: public, no auth (the page asks for a key and sends it
// only in the Authorization header of its own API calls), under a Content Security Policy that allows this origin only.
import { DEFAULT_NATIVE_SIDE, DEFAULT_SIDE_MULTIPLE } from '@sd/shared/schemas/limits';
import type { Context, Hono } from 'hono';
import { type AppEnv, configOf } from '../api/app-env.ts';
import { PLAYGROUND_CSS, PLAYGROUND_SCRIPT } from '../embed/generated/web-bundles.ts';
import { playgroundHtml } from './playground-page.ts';

/**
 * Scripts, styles and API calls from this origin only (and PUBLIC_BASE_URL's, which prediction URLs name); images from
 * anywhere, since output URLs are presigned URLs of a bucket whose host the edge does not know. No inline code, no
 * framing, no form submissions (the key can never leave in a URL).
 */
export function playgroundCsp(publicBaseUrl: string): string {
  let base = '';
  try {
    base = ` ${new URL(publicBaseUrl).origin}`;
  } catch {
    // not a URL: this origin only
  }
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `connect-src 'self'${base}`,
    'img-src * data: blob:',
    "form-action 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const COMMON_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

let pageCache: { key: string; html: string } | null = null;

function page(c: Context<AppEnv>): Response {
  const config = configOf(c);
  const models = config.models.map((m) => ({
    ref: `${m.id}:${m.version}`,
    nativeSide: m.limits.nativeSide ?? DEFAULT_NATIVE_SIDE,
    sideMultiple: m.limits.sideMultiple ?? DEFAULT_SIDE_MULTIPLE,
    minSide: m.limits.minSide,
    maxSide: m.limits.maxSide,
  }));
  const key = JSON.stringify(models);
  if (pageCache?.key !== key) pageCache = { key, html: playgroundHtml(models) };
  return c.html(pageCache.html, 200, {
    ...COMMON_HEADERS,
    'Content-Security-Policy': playgroundCsp(config.publicBaseUrl),
    'X-Frame-Options': 'DENY',
    'Cache-Control': 'no-cache',
  });
}

export function registerPlaygroundRoutes(app: Hono<AppEnv>): void {
  app.get('/', page);
  app.get('/playground.js', (c) =>
    c.body(PLAYGROUND_SCRIPT, 200, {
      ...COMMON_HEADERS,
      'Content-Type': 'text/javascript; charset=utf-8',
      'Cache-Control': 'no-cache',
    }),
  );
  app.get('/playground.css', (c) =>
    c.body(PLAYGROUND_CSS, 200, { ...COMMON_HEADERS, 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'no-cache' }),
  );
}
