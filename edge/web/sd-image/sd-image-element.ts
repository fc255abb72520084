// The <sd-image> web component third-party pages embed (served as /embed.js, bundled by edge/scripts/build-web.ts).
// Dependency-free, Shadow DOM, CSP-friendly: no eval, no inline style attributes, no requests but to api-base.
// Attributes, events and a copy-paste snippet: README.md, "The <sd-image> widget".
import { ApiError, readJson, refusal, retryAfterSeconds } from '../lib/api-errors.ts';
import { followPrediction, type Prediction, type Progress } from '../lib/follow-prediction.ts';
import { refusedOrigin } from '../lib/origin-check.ts';
import { WIDGET_CSS } from './widget-styles.ts';

/** What `sd-image:error` carries. */
export interface SdImageErrorDetail {
  /** The HTTP status of the refusal; 0 when there was no answer (network) or the failure was the page's. */
  status: number;
  message: string;
  /** `origin_not_allowed` when the edge does not list this page's origin for any key; else the API's error code. */
  code?: string;
}

/** Visitor tokens when localStorage is unavailable (private mode, sandboxed frames): kept for this page only. */
const memoryTokens = new Map<string, SavedToken>();

interface SavedToken {
  token: string;
  expires_at: string;
}

type Credential = { token: string } | { retry: true } | { error: ApiError };

// Where this script came from: the default api-base, so a page only has to include the script and a key.
const scriptOrigin = (() => {
  try {
    const src = (document.currentScript as HTMLScriptElement | null)?.src;
    return src ? new URL(src).origin : '';
  } catch {
    return '';
  }
})();

let sharedSheet: CSSStyleSheet | null = null;

function applyStyles(root: ShadowRoot): void {
  // Constructable stylesheets are not inline styles, so a CSP without 'unsafe-inline' allows them.
  try {
    if ('adoptedStyleSheets' in root && typeof CSSStyleSheet === 'function') {
      if (!sharedSheet) {
        sharedSheet = new CSSStyleSheet();
        sharedSheet.replaceSync(WIDGET_CSS);
      }
      root.adoptedStyleSheets = [sharedSheet];
      return;
    }
  } catch {
    // fall through to a <style> element
  }
  const style = document.createElement('style');
  style.textContent = WIDGET_CSS;
  root.appendChild(style);
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string>,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function safeImageUrl(url: string, base: string): string | null {
  try {
    const u = new URL(url, base || undefined);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

const isAbort = (err: unknown): boolean => err instanceof DOMException && err.name === 'AbortError';

interface Ui {
  form: HTMLFormElement;
  input: HTMLTextAreaElement;
  button: HTMLButtonElement;
  status: HTMLParagraphElement;
  progress: HTMLProgressElement;
  error: HTMLParagraphElement;
  figure: HTMLElement;
  img: HTMLImageElement;
}

class SdImage extends HTMLElement {
  static observedAttributes = ['prompt', 'placeholder'];

  private ui: Ui | null = null;
  private abort: AbortController | null = null;
  private holdUntil = 0;

  connectedCallback(): void {
    if (this.ui) return;
    const root = this.attachShadow({ mode: 'open' });
    applyStyles(root);
    const box = el('div', { class: 'box', part: 'box' });
    const form = el('form', { part: 'form' });
    const input = el('textarea', {
      name: 'prompt',
      rows: '2',
      maxlength: '1000',
      'aria-label': 'Describe the image',
      placeholder: this.getAttribute('placeholder') || 'Describe the image you want',
    });
    input.value = this.getAttribute('prompt') || '';
    const button = el('button', { type: 'submit', part: 'button' }, 'Generate');
    form.append(input, button);
    const status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite', part: 'status' });
    const progress = el('progress', { max: '1', value: '0', hidden: '', part: 'progress' });
    const error = el('p', { class: 'error', role: 'alert', hidden: '', part: 'error' });
    const figure = el('figure', { hidden: '' });
    const img = el('img', { alt: '', part: 'image' });
    figure.appendChild(img);
    box.append(form, status, progress, error, figure);
    root.appendChild(box);
    this.ui = { form, input, button, status, progress, error, figure, img };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.generate(input.value);
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        void this.generate(input.value);
      }
    });
  }

  disconnectedCallback(): void {
    this.abort?.abort();
  }

  attributeChangedCallback(name: string, _old: string | null, value: string | null): void {
    if (!this.ui) return;
    if (name === 'prompt') this.ui.input.value = value || '';
    if (name === 'placeholder') this.ui.input.setAttribute('placeholder', value || '');
  }

  private apiBase(): string {
    return (this.getAttribute('api-base') || scriptOrigin || '').replace(/\/+$/, '');
  }

  private intAttr(name: string): number | undefined {
    const v = this.getAttribute(name);
    if (v === null || v === '') return undefined;
    const n = Number(v);
    return Number.isInteger(n) ? n : undefined;
  }

  /**
   * The Bearer credential: a `token` attribute as given; with a `publishable-key`, this visitor's own visitor token
   * (POST /v1/visitor-tokens), kept in localStorage and renewed before it expires, so a visitor sees only their own
   * predictions and keeps them across page loads.
   */
  private async credential(api: string, signal: AbortSignal): Promise<Credential> {
    const token = this.getAttribute('token');
    if (token) return { token };
    const key = this.getAttribute('publishable-key') || '';
    if (!key) return { token: '' };
    const slot = `sd-image:visitor:${api}:${key.split('_')[1]}`;
    let saved: SavedToken | null = null;
    try {
      saved = JSON.parse(window.localStorage.getItem(slot) || 'null') as SavedToken | null;
    } catch {
      saved = memoryTokens.get(slot) ?? null;
    }
    if (saved?.token && Date.parse(saved.expires_at) - Date.now() > 60_000) return { token: saved.token };
    const response = await fetch(`${api}/v1/visitor-tokens`, {
      method: 'POST',
      mode: 'cors',
      credentials: 'omit',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
      body: JSON.stringify(saved?.token ? { visitor_token: saved.token } : {}),
      signal,
    });
    if (!response.ok) {
      // A renewal the edge refuses (e.g. the old token is too old): start over as a new visitor once.
      if (response.status === 422 && saved) {
        try {
          window.localStorage.removeItem(slot);
        } catch {
          memoryTokens.delete(slot);
        }
        return { retry: true };
      }
      return { error: await refusal(response) };
    }
    const minted = (await readJson(response)) as SavedToken;
    const record: SavedToken = { token: minted.token, expires_at: minted.expires_at };
    try {
      window.localStorage.setItem(slot, JSON.stringify(record));
    } catch {
      memoryTokens.set(slot, record);
    }
    return { token: record.token };
  }

  private setBusy(busy: boolean): void {
    if (!this.ui) return;
    this.ui.button.disabled = busy;
    this.ui.input.readOnly = busy;
    this.toggleAttribute('busy', busy);
  }

  private showStatus(text: string): void {
    if (this.ui) this.ui.status.textContent = text;
  }

  /** An indeterminate bar with a label (starting, waiting for a GPU). */
  private showWorking(label: string): void {
    if (!this.ui) return;
    this.ui.progress.hidden = false;
    this.ui.progress.removeAttribute('value');
    this.showStatus(label);
  }

  /** The runner's own count: step of the total the prediction asked for, as it reported it. */
  private showProgress(progress: Progress): void {
    if (!this.ui) return;
    const bar = this.ui.progress;
    bar.hidden = false;
    if (progress.total > 0) {
      bar.max = progress.total;
      bar.value = Math.max(0, Math.min(progress.total, progress.step));
      this.showStatus(`Step ${progress.step} of ${progress.total}`);
    } else {
      bar.removeAttribute('value');
      this.showStatus('Working…');
    }
  }

  private fail(detail: SdImageErrorDetail): void {
    if (!this.ui) return;
    this.ui.progress.hidden = true;
    this.ui.error.textContent = detail.message;
    this.ui.error.hidden = false;
    this.showStatus('');
    this.setAttribute('state', 'error');
    this.dispatchEvent(new CustomEvent<SdImageErrorDetail>('sd-image:error', { detail, bubbles: true, composed: true }));
  }

  private succeed(prediction: Prediction, prompt: string): void {
    const ui = this.ui;
    if (!ui) return;
    let src: string | null = null;
    for (const url of prediction.output ?? []) {
      src = safeImageUrl(url, this.apiBase());
      if (src) break;
    }
    if (!src) {
      this.fail({ status: 0, message: 'The image service finished but returned no image.' });
      return;
    }
    ui.img.onload = () => {
      ui.progress.hidden = true;
      this.showStatus('Done.');
      ui.figure.hidden = false;
      this.setAttribute('state', 'succeeded');
      this.dispatchEvent(new CustomEvent<Prediction>('sd-image:done', { detail: prediction, bubbles: true, composed: true }));
    };
    ui.img.onerror = () => this.fail({ status: 0, message: 'The image was generated but could not be loaded.' });
    ui.img.alt = prompt;
    ui.img.src = src;
  }

  /** After a 429: keep the button disabled until the server's retry time has passed. */
  private holdFor(seconds: number | null): void {
    if (!seconds) return;
    this.holdUntil = Date.now() + seconds * 1000;
    setTimeout(() => {
      this.holdUntil = 0;
      this.setBusy(false);
    }, seconds * 1000);
  }

  /** A fetch that got no answer: a page origin the edge does not list (CORS), or no network. */
  private async failUnreachable(api: string): Promise<void> {
    const origin = await refusedOrigin(api);
    if (origin) {
      console.warn(
        `<sd-image>: ${api} does not allow this page's origin ${origin}. Origins are exact (scheme, host and port: ` +
          `localhost and 127.0.0.1 differ); list it on the key, e.g. npm run keys -- create --publishable --origin ${origin}`,
      );
      return this.fail({
        status: 403,
        code: 'origin_not_allowed',
        message: `This image generator is not allowed on this page: its key does not list ${origin}. Please tell the site owner.`,
      });
    }
    this.fail({ status: 0, message: 'Could not reach the image service. Check your connection and try again.' });
  }

  /** Starts a prediction for the prompt and follows it to its image. */
  async generate(rawPrompt?: string): Promise<void> {
    const ui = this.ui;
    const prompt = String(rawPrompt ?? '').trim();
    if (!ui || this.hasAttribute('busy')) return;
    ui.error.hidden = true;
    if (!prompt) return this.fail({ status: 0, message: 'Please describe the image first.' });
    const api = this.apiBase();
    if (!api) {
      return this.fail({
        status: 0,
        message: 'This image generator is not set up correctly (no api-base). Please tell the site owner.',
      });
    }
    this.abort?.abort();
    const abort = new AbortController();
    this.abort = abort;
    const input: Record<string, unknown> = { prompt };
    const width = this.intAttr('width');
    const height = this.intAttr('height');
    const steps = this.intAttr('steps');
    if (width !== undefined) input.width = width;
    if (height !== undefined) input.height = height;
    if (steps !== undefined) input.num_inference_steps = steps;
    const body: Record<string, unknown> = { input };
    const model = this.getAttribute('model');
    if (model) body.version = model;

    this.setBusy(true);
    this.setAttribute('state', 'starting');
    ui.figure.hidden = true;
    this.showWorking('Starting…');
    try {
      let credential = await this.credential(api, abort.signal);
      if ('retry' in credential) credential = await this.credential(api, abort.signal);
      if ('error' in credential) return this.fail(detailOf(credential.error));
      if (!('token' in credential)) return;
      const auth = { Authorization: `Bearer ${credential.token}` };
      const response = await fetch(`${api}/v1/predictions`, {
        method: 'POST',
        mode: 'cors',
        credentials: 'omit',
        headers: { 'Content-Type': 'application/json', ...auth },
        body: JSON.stringify(body),
        signal: abort.signal,
      });
      if (!response.ok) {
        if (response.status === 429) this.holdFor(retryAfterSeconds(response.headers.get('Retry-After')));
        return this.fail(detailOf(await refusal(response)));
      }
      const created = (await response.json()) as Prediction;
      this.setAttribute('state', 'processing');
      const final = await followPrediction(created, auth, abort.signal, {
        onQueue: (place) =>
          this.showWorking(
            place.position === 0 ? 'Waiting for a free GPU: next in line…' : `Waiting for a free GPU: ${place.position} ahead…`,
          ),
        onProcessing: () => this.showWorking('Generating…'),
        onProgress: (p) => this.showProgress(p),
      });
      if (final.status === 'succeeded') return this.succeed(final, prompt);
      if (final.status === 'canceled') return this.fail({ status: 0, message: 'The image was canceled.' });
      return this.fail({ status: 0, message: `The image could not be made: ${final.error || 'unknown error'}.` });
    } catch (err) {
      if (isAbort(err)) return;
      if (err instanceof ApiError) return this.fail(detailOf(err));
      await this.failUnreachable(api);
    } finally {
      if (!this.holdUntil || Date.now() >= this.holdUntil) this.setBusy(false);
    }
  }
}

function detailOf(err: ApiError): SdImageErrorDetail {
  return { status: err.status, message: err.message, ...(err.code ? { code: err.code } : {}) };
}

// A page may include the script twice, or define its own <sd-image> first: the first definition stays.
if (typeof window !== 'undefined' && window.customElements && !window.customElements.get('sd-image')) {
  window.customElements.define('sd-image', SdImage);
}
