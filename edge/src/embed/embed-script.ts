// GET /embed.js: serves the <sd-image> widget with a strong ETag and long, revalidating cache headers.
// The widget is TypeScript in edge/web/sd-image/, bundled into generated/web-bundles.ts by edge/scripts/build-web.ts.

import { sha256Hex } from '@sd/shared/sha256';
import type { Context } from 'hono';
import { SD_IMAGE_SCRIPT } from './generated/web-bundles.ts';

/** The widget's script text, as served at /embed.js. */
export const EMBED_SCRIPT: string = SD_IMAGE_SCRIPT;

/** A day fresh, a week stale-while-revalidate: pages get it from cache, and a new deploy reaches them within a day. */
export const EMBED_CACHE_CONTROL = 'public, max-age=86400, stale-while-revalidate=604800';

let etagPromise: Promise<string> | null = null;

/** Strong ETag: SHA-256 of the script text (Web Crypto, so it runs in workerd and Node alike). */
export function embedScriptEtag(): Promise<string> {
  etagPromise ??= sha256Hex(EMBED_SCRIPT).then((hex) => `"${hex.slice(0, 32)}"`);
  return etagPromise;
}

function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag);
}

/**
 * Hono handler for `GET /embed.js` (and HEAD). Answers 304 to a matching If-None-Match. The script is public and
 * loaded cross-origin by third-party pages, so it allows any origin to read it and any page to embed it.
 */
export async function embedRoute(c: Context): Promise<Response> {
  const etag = await embedScriptEtag();
  const headers: Record<string, string> = {
    'Content-Type': 'text/javascript; charset=utf-8',
    'Cache-Control': EMBED_CACHE_CONTROL,
    ETag: etag,
    'Access-Control-Allow-Origin': '*',
    'Cross-Origin-Resource-Policy': 'cross-origin',
    'X-Content-Type-Options': 'nosniff',
  };
  if (matchesEtag(c.req.header('If-None-Match'), etag)) return new Response(null, { status: 304, headers });
  return new Response(c.req.method === 'HEAD' ? null : EMBED_SCRIPT, { status: 200, headers });
}
