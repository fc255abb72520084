// The playground's routes inside workerd: the page, its script and stylesheet, under a policy that allows this origin only.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { PLAYGROUND_CSS, PLAYGROUND_SCRIPT } from '../src/embed/generated/web-bundles.ts';
import { playgroundCsp } from '../src/playground/playground-routes.ts';
import { createWorkerApp } from '../src/worker-app.ts';

const app = createWorkerApp();

describe('GET / (the playground)', () => {
  it("renders every control, with the deployment's models, and no inline script or style", async () => {
    const res = await app.request('/', {}, env);
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toMatch(/^text\/html/);
    const html = await res.text();
    // The models of edge/vitest.config.ts's MODELS, as the version references the API takes.
    // Each with its size rules (these models set none: the defaults, 512 native, multiples of 8).
    expect(html).toContain('<option value="sd/embedded:embedded-v5" data-native-side="512" data-side-multiple="8"');
    expect(html).toContain('<option value="sd/pulled:v1" data-native-side="512" data-side-multiple="8"');
    for (const id of ['api-key', 'prompt', 'negative-prompt', 'width', 'height', 'steps', 'guidance', 'scheduler', 'seed']) {
      expect(html, id).toContain(`id="${id}"`);
    }
    expect(html).toContain('<option value="dpmpp_2m_karras">');
    // The key input has no name: a form submission could never carry it.
    expect(html).toMatch(/<input id="api-key" type="password"[^>]*>/);
    expect(/<input id="api-key"[^>]*\bname=/.test(html)).toBe(false);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=|<style|\son[a-z]+=/);
  });

  it('is served under a policy of this origin only: no inline code, no framing, no form submissions', async () => {
    const res = await app.request('/', {}, env);
    const csp = res.headers.get('Content-Security-Policy') ?? '';
    expect(csp).toBe(playgroundCsp(env.PUBLIC_BASE_URL));
    expect(csp.split('; ')).toEqual(
      expect.arrayContaining([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "form-action 'none'",
        "frame-ancestors 'none'",
      ]),
    );
    expect(csp).toContain(`connect-src 'self' ${new URL(env.PUBLIC_BASE_URL).origin}`);
    expect(res.headers.get('X-Frame-Options')).toBe('DENY');
    expect(res.headers.get('Referrer-Policy')).toBe('no-referrer');
  });

  it('serves its script and stylesheet from the generated bundles', async () => {
    const js = await app.request('/playground.js', {}, env);
    expect(js.headers.get('Content-Type')).toBe('text/javascript; charset=utf-8');
    expect(await js.text()).toBe(PLAYGROUND_SCRIPT);
    const css = await app.request('/playground.css', {}, env);
    expect(css.headers.get('Content-Type')).toBe('text/css; charset=utf-8');
    expect(await css.text()).toBe(PLAYGROUND_CSS);
  });
});
