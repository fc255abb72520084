// The playground (GET /) and the <sd-image> widget against the real local stack (s3rver, the runner on the embedded
// model, the edge under wrangler dev) in headless Chromium: the playground makes an image with live progress, its
// snippets are the request it sent (the fetch one is run and makes an image too), nothing moves when the image arrives,
// and the key never reaches a URL; a widget page on an origin its key does not list is told so.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Browser, chromium, type Page, type Request } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../scripts/local-stack.ts';

const CHROMIUM = '/usr/bin/chromium';
const chromiumSkipReason = existsSync(CHROMIUM) ? '' : ` (skipped: ${CHROMIUM} missing; apt-get install -y chromium)`;
const STEPS = 6;

/** The page's controls: none of them may move or change size when the image arrives. */
const CONTROLS = [
  '#api-key',
  '#forget-key',
  '#model',
  '#prompt',
  '#negative-prompt',
  '#width',
  '#height',
  '#steps',
  '#guidance',
  '#scheduler',
  '#seed',
  '#generate',
  '#cancel',
  '#image-box',
  '#progress',
  '#status',
  '#metrics',
  '.tabs',
  'pre[data-snippet="curl"]',
];

/** A third-party page with the widget, reachable as http://127.0.0.1:<port> and as http://localhost:<port>. */
function widgetPage(stackNow: () => LocalStack): Promise<{ origin: string; localhostOrigin: string; server: Server }> {
  const server = createServer((_req, res) => {
    const { edgeUrl, keys, s3 } = stackNow();
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': `default-src 'none'; script-src ${edgeUrl}; connect-src ${edgeUrl}; img-src ${s3.endpoint}; style-src 'self'`,
    });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A shop</title></head><body>
<sd-image publishable-key="${keys.shop.key}" model="sd/embedded" steps="${STEPS}"></sd-image>
<script src="${edgeUrl}/embed.js"></script></body></html>`);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ origin: `http://127.0.0.1:${port}`, localhostOrigin: `http://localhost:${port}`, server });
    }),
  );
}

/** Each snippet's request: its URL and JSON body, read back from the text the page shows. */
function parseSnippet(language: string, text: string): { url: string; body: unknown } {
  const url = /(https?:\/\/[^\s"']+\/v1\/predictions)/.exec(text)?.[1] ?? '';
  const between = (start: string, end: string) => text.slice(text.indexOf(start) + start.length, text.lastIndexOf(end));
  switch (language) {
    case 'curl':
      return { url, body: JSON.parse(between("-d '", "'").replace(/'\\''/g, "'")) };
    case 'fetch':
      return { url, body: JSON.parse(between('body: JSON.stringify(', '),')) };
    case 'replicate': {
      const version = /replicate\.run\("([^"]+)"/.exec(text)?.[1];
      const base = /baseUrl: "([^"]+)"/.exec(text)?.[1];
      return { url: `${base}/predictions`, body: { version, input: JSON.parse(between('{ input: ', ' });')) } };
    }
    case 'python': {
      const literal = between('json=', ',\n)')
        .replace(/\bTrue\b/g, 'true')
        .replace(/\bFalse\b/g, 'false')
        .replace(/\bNone\b/g, 'null');
      return { url, body: JSON.parse(literal.replace(/,(\s*[}\]])/g, '$1')) };
    }
    default:
      throw new Error(`no parser for ${language}`);
  }
}

describe.skipIf(!!chromiumSkipReason)(`the playground and the widget against the real local stack${chromiumSkipReason}`, () => {
  let stack: LocalStack;
  let site: Awaited<ReturnType<typeof widgetPage>>;
  let browser: Browser;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'playground-e2e-'));
    site = await widgetPage(() => stack);
    stack = await startLocalStack({
      secretKey: { ratePerMinute: 600, maxInFlight: 8 },
      // The shop's key lists its 127.0.0.1 origin only: the same page opened as localhost is another origin.
      keys: [{ name: 'shop', publishable: true, origins: [site.origin] }],
      runnerEnv: { PROGRESS_THROTTLE_MS: '0', ORT_INTRA_OP_THREADS: '1' },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--headless'],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    await new Promise<void>((resolve) => (site ? site.server.close(() => resolve()) : resolve()));
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function boxes(page: Page): Promise<Record<string, { x: number; y: number; width: number; height: number }>> {
    const out: Record<string, { x: number; y: number; width: number; height: number }> = {};
    for (const selector of CONTROLS) {
      const box = await page.locator(selector).boundingBox();
      if (!box) throw new Error(`${selector} is not laid out`);
      out[selector] = box;
    }
    return out;
  }

  /** The form panel as pixels, with nothing focused or hovered (no caret, no focus ring). */
  async function formShot(page: Page): Promise<Buffer> {
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.mouse.move(0, 0);
    return page.locator('#generate-form').screenshot({ animations: 'disabled', caret: 'hide' });
  }

  /**
   * Pixels that differ by more than rasterization noise: Chromium can shade an anti-aliased rounded corner one level
   * apart between two paints of the same layout; anything that moved or changed differs by far more.
   */
  async function changedPixels(a: Buffer, b: Buffer): Promise<number> {
    const [x, y] = await Promise.all([a, b].map((png) => sharp(png).raw().toBuffer({ resolveWithObject: true })));
    if (x.info.width !== y.info.width || x.info.height !== y.info.height) return Number.POSITIVE_INFINITY;
    let changed = 0;
    for (let i = 0; i < x.data.length; i += x.info.channels) {
      for (let c = 0; c < x.info.channels; c++) {
        if (Math.abs(x.data[i + c] - y.data[i + c]) > 8) {
          changed++;
          break;
        }
      }
    }
    return changed;
  }

  it('makes an image with live progress; its snippets are the request it sent, and nothing moves', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
    });
    const response = await page.goto(`${stack.edgeUrl}/`);
    expect(response?.status()).toBe(200);
    const csp = response?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("form-action 'none'");
    await page.waitForSelector('body[data-ready]');
    // The width and height inputs step by what the chosen model takes: the embedded model's U-Net needs multiples of 16.
    const sizeRules = await page.$eval('#width', (el) => {
      const input = el as HTMLInputElement;
      return { step: input.step, placeholder: input.placeholder };
    });
    expect(sizeRules).toEqual({ step: '16', placeholder: '64 (native)' });

    await page.fill('#api-key', stack.apiKey);
    await page.fill('#prompt', 'a red circle in the top left on a blue background');
    await page.fill('#negative-prompt', 'green');
    await page.fill('#steps', String(STEPS));
    await page.fill('#guidance', '6.5');
    await page.selectOption('#scheduler', 'euler_a');
    await page.fill('#seed', '7');
    const before = await boxes(page);
    const shotBefore = await formShot(page);
    await page.screenshot({ path: join(tmpdir(), 'sd-playground-before.png') });

    // Every label the status line shows, as it shows it.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { seen: string[] }).seen = seen;
      new MutationObserver(() => seen.push(document.getElementById('status')?.textContent ?? '')).observe(
        document.getElementById('status')!,
        { childList: true, characterData: true, subtree: true },
      );
    });
    const sent = page.waitForRequest((r: Request) => r.method() === 'POST' && r.url().endsWith('/v1/predictions'));
    await page.click('#generate');
    const request = await sent;
    await page.waitForSelector('#image-box.has-image', { timeout: 60_000 });
    await expect.poll(() => page.textContent('#status')).toMatch(/^Done in \d+\.\d s\.$/);
    await expect.poll(() => page.textContent('#metrics')).toMatch(/^seed 7 · predict \d+\.\d\d s · embedding cache (hit|miss)/);

    // The image: the model's native 64x64, from the bucket.
    const image = await page.$eval('#image', (img) => ({
      src: (img as HTMLImageElement).src,
      w: (img as HTMLImageElement).naturalWidth,
    }));
    expect(image.w).toBe(64);
    expect(image.src.startsWith(stack.s3.endpoint)).toBe(true);
    // Progress as the runner counted it: each "Step k of 6" label in order, the last one 6 of 6.
    const steps = ((await page.evaluate(() => (window as unknown as { seen: string[] }).seen)) as string[])
      .map((t) => /^Step (\d+) of (\d+)$/.exec(t))
      .filter((m): m is RegExpExecArray => m !== null);
    expect(steps.length).toBeGreaterThan(0);
    expect(steps.every((m) => m[2] === String(STEPS))).toBe(true);
    const counts = steps.map((m) => Number(m[1]));
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(await page.$eval('#progress', (p) => [(p as HTMLProgressElement).value, (p as HTMLProgressElement).max])).toEqual([
      STEPS,
      STEPS,
    ]);

    // Nothing moved: the controls' boxes, and the form's pixels, are what they were before the image.
    expect(await boxes(page)).toEqual(before);
    expect(await changedPixels(await formShot(page), shotBefore)).toBe(0);
    await page.screenshot({ path: join(tmpdir(), 'sd-playground-after.png') });

    // The request it sent, and each snippet's request, are the same.
    const body = request.postDataJSON() as { version: string; input: Record<string, unknown> };
    expect(body).toEqual({
      version: stack.model.ref,
      input: {
        prompt: 'a red circle in the top left on a blue background',
        negative_prompt: 'green',
        num_inference_steps: STEPS,
        guidance_scale: 6.5,
        scheduler: 'euler_a',
        seed: 7,
      },
    });
    expect(request.headers().authorization).toBe(`Bearer ${stack.apiKey}`);
    const snippets = await page.$$eval('pre[data-snippet]', (pres) =>
      pres.map((p) => [(p as HTMLElement).dataset.snippet ?? '', p.textContent ?? '']),
    );
    expect(snippets.map(([lang]) => lang)).toEqual(['curl', 'fetch', 'replicate', 'python']);
    for (const [lang, text] of snippets) {
      expect(parseSnippet(lang, text), lang).toEqual({ url: `${stack.edgeUrl}/v1/predictions`, body });
      expect(text, lang).not.toContain(stack.apiKey);
      expect(text, lang).toContain('SD_API_KEY');
    }

    // The fetch snippet, run as it is with node and the key in $SD_API_KEY, makes the same image (same seed).
    const script = join(work, 'snippet.mjs');
    await writeFile(script, snippets.find(([lang]) => lang === 'fetch')![1]);
    const { stdout } = await promisify(execFile)(process.execPath, [script], {
      env: { PATH: process.env.PATH, SD_API_KEY: stack.apiKey },
      timeout: 90_000,
    });
    expect(stdout).toMatch(/^succeeded \[/);
    const fromSnippet = /'(http[^']+)'/.exec(stdout)?.[1] ?? '';
    const [a, b] = await Promise.all(
      [fetch(image.src), fetch(fromSnippet)].map(async (r) => Buffer.from(await (await r).arrayBuffer())),
    );
    expect(a.equals(b)).toBe(true);

    // The key stayed in the page: in no URL, not in localStorage; in this tab's sessionStorage only.
    expect(urls.filter((u) => u.includes(stack.apiKey))).toEqual([]);
    expect(page.url()).toBe(`${stack.edgeUrl}/`);
    expect(await page.evaluate(() => ({ ...window.localStorage }))).toEqual({});
    expect(await page.evaluate(() => window.sessionStorage.getItem('sd-playground:key'))).toBe(stack.apiKey);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows a refused key as the API words it, and keeps the key after a reload of the tab', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${stack.edgeUrl}/`);
    await page.waitForSelector('body[data-ready]');
    // The same key with its last character changed: well-formed, unknown.
    const wrong = stack.apiKey.slice(0, -1) + (stack.apiKey.endsWith('a') ? 'b' : 'a');
    await page.fill('#api-key', wrong);
    await page.fill('#prompt', 'a blue square');
    await page.click('#generate');
    await expect.poll(() => page.textContent('#status')).toBe('HTTP 401: invalid API key');
    expect(await page.$eval('#status', (s) => s.className)).toBe('error');
    await page.reload();
    await page.waitForSelector('body[data-ready]');
    expect(await page.inputValue('#api-key')).toBe(wrong);
    await page.click('#forget-key');
    expect(await page.evaluate(() => window.sessionStorage.getItem('sd-playground:key'))).toBeNull();
    await page.close();
  });

  it("tells a widget page on an origin its key does not list so, against the real edge's CORS", async () => {
    const page = await browser.newPage();
    const warnings: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'warning') warnings.push(m.text());
    });
    await page.goto(`${site.localhostOrigin}/`);
    const widget = page.locator('sd-image');
    await widget.locator('textarea').fill('a cat');
    await widget.locator('button').click();
    await widget.locator('.error').waitFor({ state: 'visible', timeout: 30_000 });
    expect(await widget.locator('.error').textContent()).toBe(
      `This image generator is not allowed on this page: its key does not list ${site.localhostOrigin}. Please tell the site owner.`,
    );
    expect(warnings.join('\n')).toContain(`--origin ${site.localhostOrigin}`);
    // The listed origin, same page and key: the widget works.
    await page.goto(`${site.origin}/`);
    await widget.locator('textarea').fill('a red circle on a blue background');
    await widget.locator('button').click();
    await widget.locator('figure img').waitFor({ state: 'visible', timeout: 60_000 });
    expect(await widget.getAttribute('state')).toBe('succeeded');
    await page.close();
  });
});
