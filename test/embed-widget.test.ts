// The <sd-image> widget in headless Chromium: a third-party page on one loopback origin (with a strict CSP) embeds
// /embed.js from the API's origin. The API side is `stubEdgeApi`, a small Replicate-shaped server serving the real
// embedRoute, with slow deterministic steps: it covers what the real edge cannot produce on demand (mid-run progress
// text, the polling fallback without a stream URL, a 422 field message, a fixed Retry-After). The widget against the
// real edge (wrangler dev, runner, s3rver: an image, a real 429 and 401) is in test/edge-e2e.test.ts.
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { errorBody } from '@sd/shared/schemas/errors';
import { Hono } from 'hono';
import { type Browser, chromium, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBED_CACHE_CONTROL, EMBED_SCRIPT, embedRoute } from '../edge/src/embed/embed-script.ts';
import { freePort } from '../scripts/stack/free-port.ts';

const CHROMIUM = '/usr/bin/chromium';
const chromiumSkipReason = existsSync(CHROMIUM) ? '' : ` (skipped: ${CHROMIUM} missing; apt-get install -y chromium)`;
const KEY = 'pk_test_widget';
const STEPS = 4;

interface StubPrediction {
  id: string;
  status: 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';
  input: Record<string, unknown>;
  output: string[] | null;
  error: string | null;
  progress: { step: number; total: number; fraction: number } | null;
  created_at: string;
  stream: boolean;
}

/**
 * A stand-in for the edge's public API, in the documented Replicate shape: POST /v1/predictions -> 201 with urls,
 * GET /v1/predictions/{id} -> status/progress/output, the SSE stream (event names of edge/src/predictions/sse-events.ts),
 * 429 with Retry-After and 422 with the shared errorBody. Prompts pick the scenario: "ratelimit", "forbidden", "poll".
 */
async function stubEdgeApi(pageOrigin: () => string) {
  const predictions = new Map<string, StubPrediction>();
  const requests: Array<{ method: string; path: string; origin: string | undefined; auth: string | undefined }> = [];
  const png = await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 60, g: 90, b: 200 } } })
    .composite([{ input: Buffer.from('<svg width="256" height="256"><circle cx="128" cy="128" r="80" fill="#f5b041"/></svg>') }])
    .png()
    .toBuffer();
  let base = '';
  let counter = 0;
  const app = new Hono();

  app.use('*', async (c, next) => {
    requests.push({
      method: c.req.method,
      path: c.req.path,
      origin: c.req.header('Origin'),
      auth: c.req.header('Authorization'),
    });
    const origin = c.req.header('Origin');
    const cors = origin === pageOrigin();
    if (c.req.method === 'OPTIONS') {
      return c.body(null, 204, {
        ...(cors
          ? {
              'Access-Control-Allow-Origin': origin,
              'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
              'Access-Control-Allow-Headers': 'Authorization, Content-Type, Prefer',
              'Access-Control-Max-Age': '600',
            }
          : {}),
      });
    }
    await next();
    if (cors && origin) {
      c.res.headers.set('Access-Control-Allow-Origin', origin);
      c.res.headers.set('Access-Control-Expose-Headers', 'Retry-After');
    }
  });

  app.get('/embed.js', embedRoute);
  // The edge's origin check (edge/src/auth/cors/origin-check.ts; against the real edge in test/playground-e2e.test.ts),
  // over the same one-origin list as this stub's CORS: readable from any origin.
  app.get('/embed/origin-check', (c) => {
    const origin = c.req.header('Origin') ?? null;
    return c.json({ origin, allowed: origin === pageOrigin() }, 200, { 'Access-Control-Allow-Origin': '*' });
  });
  app.get('/images/:name', (c) => c.body(new Uint8Array(png), 200, { 'Content-Type': 'image/png' }));

  // As the real edge: the page's pk_ key only mints visitor tokens; predictions are made with the visitor's token.
  const visitorTokens = new Set<string>();
  const authorized = (header: string | undefined) => !!header && visitorTokens.has(header.replace(/^Bearer /, ''));

  app.post('/v1/visitor-tokens', (c) => {
    if (c.req.header('Authorization') !== `Bearer ${KEY}`) {
      return c.json(errorBody(401, 'unauthorized', 'invalid API key'), 401);
    }
    const token = `visitor.token.${++counter}`;
    visitorTokens.add(token);
    return c.json({ token, visitor_id: `vis_${counter}`, expires_at: new Date(Date.now() + 3600_000).toISOString() }, 201);
  });

  app.post('/v1/predictions', async (c) => {
    if (!authorized(c.req.header('Authorization'))) {
      return c.json(errorBody(401, 'unauthorized', 'invalid API key'), 401);
    }
    const body = (await c.req.json()) as { input: { prompt: string } };
    const prompt = body.input.prompt;
    if (prompt.includes('ratelimit')) {
      return c.json(errorBody(429, 'rate_limited', 'rate limit of 10 predictions per minute exceeded'), 429, {
        'Retry-After': '37',
      });
    }
    if (prompt.includes('forbidden')) {
      const message = 'prompt must not contain the blocked term "forbidden"';
      return c.json(errorBody(422, 'invalid_input', message, [{ field: 'input.prompt', message }]), 422);
    }
    const id = `stub${++counter}`;
    const p: StubPrediction = {
      id,
      status: 'starting',
      input: body.input,
      output: null,
      error: null,
      progress: null,
      created_at: new Date().toISOString(),
      stream: !prompt.includes('poll'),
    };
    predictions.set(id, p);
    // The "runner": one step every 250 ms, then the image.
    let step = 0;
    const timer = setInterval(() => {
      step++;
      p.status = 'processing';
      p.progress = { step, total: STEPS, fraction: step / STEPS };
      if (step === STEPS) {
        clearInterval(timer);
        p.status = 'succeeded';
        p.output = [`${base}/images/${id}.png`];
      }
    }, 250);
    return c.json(publicPrediction(p), 201);
  });

  function publicPrediction(p: StubPrediction) {
    return {
      id: p.id,
      model: 'sd/embedded',
      version: 'embedded-v5',
      input: p.input,
      output: p.output,
      error: p.error,
      logs: '',
      status: p.status,
      created_at: p.created_at,
      started_at: null,
      completed_at: null,
      metrics: {},
      progress: p.progress,
      urls: {
        get: `${base}/v1/predictions/${p.id}`,
        cancel: `${base}/v1/predictions/${p.id}/cancel`,
        ...(p.stream ? { stream: `${base}/v1/predictions/${p.id}/stream?token=cap-${p.id}` } : {}),
      },
    };
  }

  app.get('/v1/predictions/:id', (c) => {
    if (!authorized(c.req.header('Authorization'))) return c.json(errorBody(401, 'unauthorized', 'invalid API key'), 401);
    const p = predictions.get(c.req.param('id'));
    return p ? c.json(publicPrediction(p)) : c.json(errorBody(404, 'not_found', 'no such prediction'), 404);
  });

  // The stream is authorised by the capability token in its URL, like the edge's.
  app.get('/v1/predictions/:id/stream', (c) => {
    const p = predictions.get(c.req.param('id'));
    if (!p || c.req.query('token') !== `cap-${p.id}`) return c.json(errorBody(404, 'not_found', 'no such stream'), 404);
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (event: string, data: string) => controller.enqueue(encoder.encode(`event: ${event}\ndata: ${data}\n\n`));
        let lastStep = -1;
        let lastStatus = '';
        const tick = setInterval(() => {
          if (p.status !== lastStatus) {
            lastStatus = p.status;
            send('status', JSON.stringify({ status: p.status }));
          }
          if (p.progress && p.progress.step !== lastStep) {
            lastStep = p.progress.step;
            send('progress', JSON.stringify(p.progress));
          }
          if (p.status === 'succeeded') {
            for (const url of p.output ?? []) send('output', url);
            send('done', '{}');
            clearInterval(tick);
            controller.close();
          }
        }, 50);
      },
    });
    return c.body(body, 200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
  });

  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, requests, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The third-party page: its own origin, a CSP that allows scripts, fetches and images only from the API origin. */
async function thirdPartySite(apiBase: () => string) {
  const server: Server = createServer((req, res) => {
    const api = apiBase();
    // ?api-base=URL: the widget talks to another origin than the one its script came from (e.g. nothing listening).
    const other = new URL(req.url ?? '/', 'http://x').searchParams.get('api-base');
    const attrs = req.url?.includes('noattrs')
      ? ''
      : ` publishable-key="${KEY}" model="sd/embedded" width="256" height="256" steps="${STEPS}"${other ? ` api-base="${other}"` : ''}`;
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': `default-src 'none'; script-src ${api}; connect-src ${api} ${other ?? ''}; img-src ${api}; style-src 'self'`,
    });
    res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A customer's page</title></head>
<body>
<h1>Make a picture</h1>
<sd-image${attrs} placeholder="A lighthouse at dusk"></sd-image>
<script src="${api}/embed.js"></script>
</body></html>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  // The same page by another name: a different origin for the browser (and so for CORS and the key's origins).
  const localhostOrigin = `http://localhost:${port}`;
  return { origin, localhostOrigin, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe.skipIf(!!chromiumSkipReason)(`<sd-image> embed widget in Chromium${chromiumSkipReason}`, () => {
  let api: Awaited<ReturnType<typeof stubEdgeApi>>;
  let site: Awaited<ReturnType<typeof thirdPartySite>>;
  let browser: Browser;
  const cspViolations: string[] = [];
  const foreignRequests: string[] = [];
  const pageErrors: string[] = [];
  let unreachable = '';

  beforeAll(async () => {
    api = await stubEdgeApi(() => site.origin);
    site = await thirdPartySite(() => api.base);
    unreachable = `http://127.0.0.1:${await freePort()}`; // nothing listens there
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--headless'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await api?.close();
  });

  async function openPage(path = '/', origin = site.origin): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 640, height: 560 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    page.on('request', (r) => {
      const origin = new URL(r.url()).origin;
      if (![site.origin, site.localhostOrigin, api.base, unreachable].includes(origin)) foreignRequests.push(r.url());
    });
    await page.goto(origin + path);
    await page.waitForFunction(() => !!customElements.get('sd-image') && !!document.querySelector('sd-image')?.shadowRoot);
    await page.evaluate(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        (window as unknown as { violations: string[] }).violations ??= [];
        (window as unknown as { violations: string[] }).violations.push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    return page;
  }

  it('renders its UI inside a shadow root, invisible to the page DOM', async () => {
    const page = await openPage();
    const shape = await page.evaluate(() => {
      const host = document.querySelector('sd-image')!;
      const root = host.shadowRoot!;
      return {
        textarea: !!root.querySelector('textarea'),
        button: root.querySelector('button')?.textContent,
        placeholder: root.querySelector('textarea')?.getAttribute('placeholder'),
        leakedToDocument: !!document.querySelector('textarea, button, progress'),
        styled: root.adoptedStyleSheets.length + root.querySelectorAll('style').length,
        buttonColor: getComputedStyle(root.querySelector('button')!).backgroundColor,
      };
    });
    expect(shape).toMatchObject({
      textarea: true,
      button: 'Generate',
      placeholder: 'A lighthouse at dusk',
      leakedToDocument: false,
    });
    expect(shape.styled).toBeGreaterThan(0);
    // Styles actually apply under a CSP without 'unsafe-inline' (adoptedStyleSheets, not inline styles).
    expect(shape.buttonColor).toBe('rgb(59, 91, 219)');
    await page.close();
  });

  it('shows progress from the stream, then the output image', async () => {
    const page = await openPage();
    const widget = page.locator('sd-image');
    await widget.locator('textarea').fill('a lighthouse at dusk, oil painting');
    await widget.locator('button').click();
    // Playwright locators pierce open shadow roots.
    await expect.poll(() => widget.locator('.status').textContent(), { timeout: 5000 }).toMatch(/^Step \d of 4$/);
    expect(await widget.locator('progress').isVisible()).toBe(true);
    // The bar counts the runner's own steps of the total it reported, the same numbers as the label.
    const shown = await page
      .waitForFunction(() => {
        const root = document.querySelector('sd-image')!.shadowRoot!;
        const bar = root.querySelector('progress')!;
        const label = root.querySelector('.status')!.textContent ?? '';
        return /^Step \d of 4$/.test(label) && { label, value: bar.value, max: bar.max };
      })
      .then((h) => h.jsonValue() as Promise<{ label: string; value: number; max: number }>);
    expect(shown.max).toBe(4);
    expect(`Step ${shown.value} of ${shown.max}`).toBe(shown.label);
    expect(await widget.locator('button').isDisabled()).toBe(true);
    await widget.locator('figure img').waitFor({ state: 'visible', timeout: 10_000 });
    const img = await widget
      .locator('figure img')
      .evaluate((i: HTMLImageElement) => ({ src: i.src, alt: i.alt, w: i.naturalWidth }));
    expect(img.src).toMatch(new RegExp(`^${api.base}/images/stub\\d+\\.png$`));
    expect(img.alt).toBe('a lighthouse at dusk, oil painting');
    expect(img.w).toBe(256);
    expect(await widget.getAttribute('state')).toBe('succeeded');
    expect(await widget.locator('.status').textContent()).toBe('Done.');
    expect(await widget.locator('button').isDisabled()).toBe(false);
    await page.screenshot({ path: '/tmp/sd-image-widget.png' });
    // The pk_ key only minted this visitor's token; the create carried that token; the stream was read without a key
    // (capability URL).
    const mint = api.requests.filter((r) => r.method === 'POST' && r.path === '/v1/visitor-tokens').at(-1);
    expect(mint).toMatchObject({ origin: site.origin, auth: `Bearer ${KEY}` });
    const create = api.requests.filter((r) => r.method === 'POST' && r.path === '/v1/predictions').at(-1);
    expect(create).toMatchObject({ origin: site.origin, auth: expect.stringMatching(/^Bearer visitor\.token\.\d+$/) });
    expect(api.requests.some((r) => r.path.endsWith('/stream') && r.auth === undefined)).toBe(true);
    expect(await page.evaluate(() => (window as unknown as { violations?: string[] }).violations ?? [])).toEqual([]);
    await page.close();
  });

  it('falls back to polling GET /v1/predictions/{id} when there is no stream URL', async () => {
    const page = await openPage();
    const widget = page.locator('sd-image');
    await widget.locator('textarea').fill('poll me: a red fox');
    const before = api.requests.length;
    await widget.locator('button').click();
    await widget.locator('figure img').waitFor({ state: 'visible', timeout: 10_000 });
    const polls = api.requests.slice(before).filter((r) => r.method === 'GET' && /^\/v1\/predictions\/stub\d+$/.test(r.path));
    expect(polls.length).toBeGreaterThan(0);
    // The visitor's token, kept in localStorage from the page's first picture, not the pk_ key.
    expect(polls.every((r) => /^Bearer visitor\.token\.\d+$/.test(r.auth ?? ''))).toBe(true);
    expect(await widget.locator('figure img').getAttribute('src')).toMatch(/\/images\/stub\d+\.png$/);
    await page.close();
  });

  it('tells the person when to retry after a 429, and holds the button until then', async () => {
    const page = await openPage();
    const widget = page.locator('sd-image');
    await widget.locator('textarea').fill('ratelimit me');
    await widget.locator('button').click();
    const error = widget.locator('.error');
    await error.waitFor({ state: 'visible' });
    expect(await error.textContent()).toBe('Too many images requested right now. Try again in 37 seconds.');
    expect(await error.getAttribute('role')).toBe('alert');
    expect(await widget.locator('button').isDisabled()).toBe(true);
    expect(await widget.locator('figure').isVisible()).toBe(false);
    await page.screenshot({ path: '/tmp/sd-image-widget-429.png' });
    await page.close();
  });

  it("shows the API's field message for a 422", async () => {
    const page = await openPage();
    const widget = page.locator('sd-image');
    await widget.locator('textarea').fill('something forbidden');
    await widget.locator('button').click();
    const error = widget.locator('.error');
    await error.waitFor({ state: 'visible' });
    expect(await error.textContent()).toBe('This prompt can\'t be used: prompt must not contain the blocked term "forbidden".');
    expect(await widget.locator('button').isDisabled()).toBe(false);
    expect(await widget.getAttribute('state')).toBe('error');
    await page.close();
  });

  it('explains a refused key (401) without a technical dump', async () => {
    const page = await openPage('/noattrs');
    const widget = page.locator('sd-image');
    await widget.evaluate((el) => el.setAttribute('publishable-key', 'pk_wrong'));
    await widget.locator('textarea').fill('a cat');
    await widget.locator('button').click();
    await widget.locator('.error').waitFor({ state: 'visible' });
    expect(await widget.locator('.error').textContent()).toBe(
      'This image generator is not set up correctly (its key was refused). Please tell the site owner.',
    );
    await page.close();
  });

  it("says the page's origin is not allowed when the edge does not list it, instead of 'could not reach'", async () => {
    // The page at http://localhost:<port>; the key (and so CORS) allows only http://127.0.0.1:<port>.
    const page = await openPage('/', site.localhostOrigin);
    const warnings: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'warning') warnings.push(m.text());
    });
    const widget = page.locator('sd-image');
    const detail = page.evaluate(
      () =>
        new Promise((resolve) =>
          document.addEventListener('sd-image:error', (e) => resolve((e as CustomEvent).detail), { once: true }),
        ),
    );
    await widget.locator('textarea').fill('a cat');
    await widget.locator('button').click();
    await widget.locator('.error').waitFor({ state: 'visible' });
    expect(await widget.locator('.error').textContent()).toBe(
      `This image generator is not allowed on this page: its key does not list ${site.localhostOrigin}. Please tell the site owner.`,
    );
    expect(await detail).toEqual({
      status: 403,
      code: 'origin_not_allowed',
      message: expect.stringContaining(site.localhostOrigin),
    });
    // The page's developer is told how to fix it in the console.
    expect(warnings.join('\n')).toContain(`npm run keys -- create --publishable --origin ${site.localhostOrigin}`);
    expect(await widget.locator('button').isDisabled()).toBe(false);
    await page.screenshot({ path: '/tmp/sd-image-widget-origin.png' });
    await page.close();
  });

  it('still says it could not reach the service when nothing answers at its api-base', async () => {
    const page = await openPage(`/?api-base=${encodeURIComponent(unreachable)}`);
    const widget = page.locator('sd-image');
    await widget.locator('textarea').fill('a cat');
    await widget.locator('button').click();
    await widget.locator('.error').waitFor({ state: 'visible' });
    expect(await widget.locator('.error').textContent()).toBe(
      'Could not reach the image service. Check your connection and try again.',
    );
    await page.close();
  });

  it('made no request outside the page and API origins, broke no CSP rule and threw nothing', () => {
    expect(foreignRequests).toEqual([]);
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});

describe('GET /embed.js (embedRoute)', () => {
  const app = new Hono().get('/embed.js', embedRoute);

  it('serves the script with a strong ETag and long cache headers, and 304 on a matching If-None-Match', async () => {
    const res = await app.request('/embed.js');
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('Cache-Control')).toBe(EMBED_CACHE_CONTROL);
    expect(res.headers.get('Cache-Control')).toMatch(/max-age=86400/);
    const etag = res.headers.get('ETag');
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(await res.text()).toBe(EMBED_SCRIPT);
    const again = await app.request('/embed.js', { headers: { 'If-None-Match': `W/${etag}, "other"` } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    const stale = await app.request('/embed.js', { headers: { 'If-None-Match': '"0000"' } });
    expect(stale.status).toBe(200);
  });

  it('is CSP-friendly text: no eval, no Function constructor, no inline style attributes, no other hosts', () => {
    expect(EMBED_SCRIPT).not.toMatch(/\beval\s*\(|new Function|setTimeout\s*\(\s*['"]/);
    expect(EMBED_SCRIPT).not.toMatch(/\.innerHTML\s*=|\.style\.|setAttribute\(\s*['"]style/);
    expect(EMBED_SCRIPT.match(/https?:\/\/[^\s'"]+/g) ?? []).toEqual([]);
    // It parses as a script.
    expect(() => new Function(EMBED_SCRIPT)).not.toThrow();
  });
});
