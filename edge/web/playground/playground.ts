// The playground page's script (GET / on the edge; markup in edge/src/playground/playground-page.ts): a person with an
// API key types a prompt and parameters, watches the runner's progress, gets the image, and copies the same request as
// curl, JavaScript or Python. The key stays in this tab's sessionStorage; it is never put in a URL.
import { ApiError, refusal } from '../lib/api-errors.ts';
import { followPrediction, type Prediction, type Progress, type QueuePlace } from '../lib/follow-prediction.ts';
import { type CreateBody, type SnippetLanguage, snippet } from './snippets.ts';

const KEY_SLOT = 'sd-playground:key';

function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`playground: #${id} is missing from the page`);
  return node as T;
}

const ui = {
  key: byId<HTMLInputElement>('api-key'),
  forget: byId<HTMLButtonElement>('forget-key'),
  form: byId<HTMLFormElement>('generate-form'),
  model: byId<HTMLSelectElement>('model'),
  prompt: byId<HTMLTextAreaElement>('prompt'),
  negative: byId<HTMLTextAreaElement>('negative-prompt'),
  width: byId<HTMLInputElement>('width'),
  height: byId<HTMLInputElement>('height'),
  steps: byId<HTMLInputElement>('steps'),
  guidance: byId<HTMLInputElement>('guidance'),
  guidanceEnd: byId<HTMLInputElement>('guidance-end'),
  scheduler: byId<HTMLSelectElement>('scheduler'),
  seed: byId<HTMLInputElement>('seed'),
  generate: byId<HTMLButtonElement>('generate'),
  cancel: byId<HTMLButtonElement>('cancel'),
  image: byId<HTMLImageElement>('image'),
  imageBox: byId<HTMLElement>('image-box'),
  progress: byId<HTMLProgressElement>('progress'),
  status: byId<HTMLElement>('status'),
  metrics: byId<HTMLElement>('metrics'),
  tabs: Array.from(document.querySelectorAll<HTMLButtonElement>('[data-snippet-tab]')),
  snippets: Array.from(document.querySelectorAll<HTMLElement>('pre[data-snippet]')),
  copy: byId<HTMLButtonElement>('copy-snippet'),
};

const apiBase = window.location.origin;
let running: { abort: AbortController; cancelUrl?: string; auth: HeadersInit } | null = null;

// --- the key: this tab only ------------------------------------------------------------------------------------------

function savedKey(): string {
  try {
    return window.sessionStorage.getItem(KEY_SLOT) ?? '';
  } catch {
    return '';
  }
}

function saveKey(value: string): void {
  try {
    if (value) window.sessionStorage.setItem(KEY_SLOT, value);
    else window.sessionStorage.removeItem(KEY_SLOT);
  } catch {
    // storage off (private mode): the key lives in the input only
  }
}

// --- the request -----------------------------------------------------------------------------------------------------

/** A number field's value, or undefined when it is empty. */
function numberField(input: HTMLInputElement): number | undefined {
  const raw = input.value.trim();
  return raw === '' ? undefined : Number(raw);
}

/** The create body the form describes now: only the fields a person set (the API's defaults fill the rest). */
function requestBody(): CreateBody {
  const input: CreateBody['input'] = { prompt: ui.prompt.value.trim() };
  const negative = ui.negative.value.trim();
  if (negative) input.negative_prompt = negative;
  const fields: Array<[string, HTMLInputElement]> = [
    ['width', ui.width],
    ['height', ui.height],
    ['num_inference_steps', ui.steps],
    ['guidance_scale', ui.guidance],
    ['guidance_end', ui.guidanceEnd],
    ['seed', ui.seed],
  ];
  for (const [name, field] of fields) {
    const value = numberField(field);
    if (value !== undefined) input[name] = value;
  }
  if (ui.scheduler.value) input.scheduler = ui.scheduler.value;
  return { version: ui.model.value, input };
}

/** The chosen model's size rules (the server renders them on each option) onto the width and height inputs. */
function applyModelSizes(): void {
  const option = ui.model.selectedOptions[0];
  if (!option) return;
  const { nativeSide, sideMultiple, minSide, maxSide } = option.dataset;
  for (const input of [ui.width, ui.height]) {
    if (sideMultiple) input.step = sideMultiple;
    if (minSide) input.min = minSide;
    if (maxSide) input.max = maxSide;
    if (nativeSide) input.placeholder = `${nativeSide} (native)`;
  }
}

function showSnippets(body: CreateBody): void {
  for (const pre of ui.snippets) pre.textContent = snippet(pre.dataset.snippet as SnippetLanguage, apiBase, body);
}

function selectTab(language: string): void {
  for (const tab of ui.tabs) tab.setAttribute('aria-selected', String(tab.dataset.snippetTab === language));
  for (const pre of ui.snippets) pre.hidden = pre.dataset.snippet !== language;
}

// --- what the person sees --------------------------------------------------------------------------------------------

function setStatus(text: string, kind: 'info' | 'error' = 'info'): void {
  ui.status.textContent = text;
  ui.status.classList.toggle('error', kind === 'error');
}

function setBusy(busy: boolean): void {
  ui.generate.disabled = busy;
  ui.cancel.disabled = !busy;
  document.body.toggleAttribute('data-busy', busy);
}

function showProgress(progress: Progress): void {
  if (progress.total > 0) {
    ui.progress.max = progress.total;
    ui.progress.value = Math.max(0, Math.min(progress.total, progress.step));
    setStatus(`Step ${progress.step} of ${progress.total}`);
  }
}

function showQueue(place: QueuePlace): void {
  ui.progress.removeAttribute('value');
  const ahead = place.position === 0 ? 'next in line' : `${place.position} ahead of it`;
  setStatus(`Waiting for a GPU: ${ahead}.`);
}

function showMetrics(prediction: Prediction): void {
  const m = (prediction.metrics ?? {}) as Record<string, unknown>;
  const secs = (k: string) => (typeof m[k] === 'number' ? `${(m[k] as number).toFixed(2)} s` : '–');
  ui.metrics.textContent = `seed ${m.seed ?? '–'} · predict ${secs('predict_time')} · embedding cache ${m.embedding_cache ?? '–'} · ${prediction.id}`;
}

function showImage(url: string, alt: string): Promise<void> {
  return new Promise((resolve, reject) => {
    ui.image.onload = () => {
      ui.imageBox.classList.add('has-image');
      resolve();
    };
    ui.image.onerror = () => reject(new Error('the image was generated but could not be loaded'));
    ui.image.alt = alt;
    ui.image.src = url;
  });
}

// --- one generation --------------------------------------------------------------------------------------------------

async function generate(): Promise<void> {
  if (running) return;
  const key = ui.key.value.trim();
  if (!key) {
    setStatus('Paste an API key first (sk_…, from npm start or npm run keys -- create).', 'error');
    ui.key.focus();
    return;
  }
  if (key.startsWith('pk_')) {
    setStatus('That is a publishable key: it works only on the pages it lists. Use a secret key (sk_…) here.', 'error');
    return;
  }
  const body = requestBody();
  if (!body.input.prompt) {
    setStatus('Describe the image first.', 'error');
    ui.prompt.focus();
    return;
  }
  showSnippets(body);
  const auth = { Authorization: `Bearer ${key}` };
  const abort = new AbortController();
  running = { abort, auth };
  setBusy(true);
  ui.progress.removeAttribute('value');
  setStatus('Starting…');
  const started = performance.now();
  try {
    const response = await fetch(`${apiBase}/v1/predictions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...auth },
      body: JSON.stringify(body),
      signal: abort.signal,
    });
    if (!response.ok) throw await refusal(response);
    const created = (await response.json()) as Prediction;
    running.cancelUrl = created.urls?.cancel;
    const final = await followPrediction(created, auth, abort.signal, {
      onQueue: showQueue,
      onProcessing: () => setStatus('Generating…'),
      onProgress: showProgress,
    });
    // The stream's end carries no metrics: read the finished prediction once.
    const got = final.urls?.get ? await fetch(final.urls.get, { headers: auth, signal: abort.signal }) : null;
    const full = got?.ok ? ((await got.json()) as Prediction) : final;
    if (final.status === 'succeeded' && final.output?.[0]) {
      await showImage(final.output[0], body.input.prompt as string);
      ui.progress.value = ui.progress.max;
      setStatus(`Done in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
      showMetrics(full);
    } else if (final.status === 'canceled') setStatus('Canceled.', 'error');
    else setStatus(`The image could not be made: ${final.error || 'unknown error'}.`, 'error');
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') setStatus('Stopped.', 'error');
    else if (err instanceof ApiError) setStatus(`HTTP ${err.status}: ${err.detail || err.message}`, 'error');
    else setStatus(`Could not reach the edge: ${(err as Error).message}`, 'error');
  } finally {
    running = null;
    setBusy(false);
  }
}

async function cancel(): Promise<void> {
  const current = running;
  if (!current) return;
  if (!current.cancelUrl) {
    current.abort.abort();
    return;
  }
  setStatus('Canceling…');
  // The stream then ends with `canceled`, which finishes generate().
  await fetch(current.cancelUrl, { method: 'POST', headers: current.auth }).catch(() => current.abort.abort());
}

// --- wiring ----------------------------------------------------------------------------------------------------------

ui.key.value = savedKey();
ui.key.addEventListener('input', () => saveKey(ui.key.value.trim()));
ui.forget.addEventListener('click', () => {
  ui.key.value = '';
  saveKey('');
  ui.key.focus();
});
ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  void generate();
});
ui.model.addEventListener('change', applyModelSizes);
ui.form.addEventListener('input', () => showSnippets(requestBody()));
ui.form.addEventListener('change', () => showSnippets(requestBody()));
ui.cancel.addEventListener('click', () => void cancel());
for (const tab of ui.tabs) tab.addEventListener('click', () => selectTab(tab.dataset.snippetTab ?? 'curl'));
ui.copy.addEventListener('click', () => {
  const visible = ui.snippets.find((pre) => !pre.hidden);
  if (visible?.textContent) void navigator.clipboard?.writeText(visible.textContent).then(() => setStatus('Copied.'));
});
selectTab('curl');
applyModelSizes();
showSnippets(requestBody());
document.body.setAttribute('data-ready', '');
