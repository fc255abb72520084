// The playground's HTML: every control rendered by the server with the deployment's models and the schedulers, so the
// layout is whole before the script runs; the script (edge/web/playground/playground.ts) binds to these ids.
import { SCHEDULER_NAMES } from '@sd/shared/scheduler-names';
import { DEFAULT_LIMITS, DEFAULT_NATIVE_SIDE, DEFAULT_SIDE_MULTIPLE } from '@sd/shared/schemas/limits';

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] as string);

/** A model the page offers: its Replicate version reference "owner/name:version", and its size rules. */
export interface PlaygroundModel {
  ref: string;
  /** Its native width and height (the default when none is given). */
  nativeSide: number;
  /** What width and height must be multiples of. */
  sideMultiple: number;
  minSide: number;
  maxSide: number;
}

function numberInput(id: string, label: string, attrs: Record<string, string>): string {
  const extra = Object.entries(attrs)
    .map(([k, v]) => ` ${k}="${escapeHtml(v)}"`)
    .join('');
  return `<div><label for="${id}">${label}</label><input id="${id}" type="number" inputmode="decimal"${extra}></div>`;
}

export function playgroundHtml(models: PlaygroundModel[]): string {
  // Each option carries its model's size rules; the script puts them on the width and height inputs when it is chosen,
  // so the browser steps by what the model takes (16 for the embedded model) instead of a fixed 8.
  const modelOptions = models
    .map(
      (m) =>
        `<option value="${escapeHtml(m.ref)}" data-native-side="${m.nativeSide}" data-side-multiple="${m.sideMultiple}" data-min-side="${m.minSide}" data-max-side="${m.maxSide}">${escapeHtml(m.ref)}</option>`,
    )
    .join('');
  // Before any script runs, the inputs hold the first model's rules (the one the select shows).
  const first: Omit<PlaygroundModel, 'ref'> = models[0] ?? {
    ...DEFAULT_LIMITS,
    nativeSide: DEFAULT_NATIVE_SIDE,
    sideMultiple: DEFAULT_SIDE_MULTIPLE,
  };
  const side = (id: string, label: string) =>
    numberInput(id, label, {
      min: String(first.minSide),
      max: String(first.maxSide),
      step: String(first.sideMultiple),
      placeholder: `${first.nativeSide} (native)`,
    });
  const schedulerOptions = [
    '<option value="">the model\'s own</option>',
    ...SCHEDULER_NAMES.map((name) => `<option value="${name}">${name}</option>`),
  ].join('');
  const tabs = (
    [
      ['curl', 'curl'],
      ['fetch', 'JavaScript (fetch)'],
      ['replicate', 'JavaScript (replicate)'],
      ['python', 'Python'],
    ] as const
  )
    .map(([lang, label]) => `<button type="button" role="tab" data-snippet-tab="${lang}" aria-selected="false">${label}</button>`)
    .join('');
  const pres = ['curl', 'fetch', 'replicate', 'python'].map((lang) => `<pre data-snippet="${lang}" hidden></pre>`).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>sd-edge playground</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/playground.css">
<script src="/playground.js" defer></script>
</head>
<body>
<header>
<h1>sd-edge playground</h1>
<p>Make an image with your API key, watch its progress, and copy the same request for curl, JavaScript or Python.
The key stays in this tab (sessionStorage) and is sent only to this edge, in the Authorization header.</p>
</header>
<div class="key panel">
<label for="api-key">API key</label>
<input id="api-key" type="password" autocomplete="off" spellcheck="false" placeholder="sk_… (npm start prints one)">
<button type="button" id="forget-key">Forget</button>
</div>
<main>
<form id="generate-form" class="panel" method="post" autocomplete="off">
<div class="field"><label for="model">Model</label><select id="model">${modelOptions}</select></div>
<div class="field"><label for="prompt">Prompt</label><textarea id="prompt" maxlength="2000" placeholder="a red circle in the top left on a blue background"></textarea></div>
<div class="field"><label for="negative-prompt">Negative prompt</label><textarea id="negative-prompt" maxlength="2000" placeholder="what the image should not have (optional)"></textarea></div>
<div class="params">
${side('width', 'Width')}
${side('height', 'Height')}
${numberInput('steps', 'Steps', { min: '1', max: '150', step: '1', value: '25' })}
${numberInput('guidance', 'Guidance', { min: '0', max: '30', step: '0.5', value: '7.5' })}
${numberInput('guidance-end', 'Guidance end', { min: '0', max: '1', step: '0.05', placeholder: "model's" })}
<div><label for="scheduler">Scheduler</label><select id="scheduler">${schedulerOptions}</select></div>
${numberInput('seed', 'Seed', { min: '0', max: '4294967295', step: '1', placeholder: 'random' })}
</div>
<div class="actions">
<button type="submit" id="generate" class="primary">Generate</button>
<button type="button" id="cancel" disabled>Cancel</button>
</div>
</form>
<section class="panel output" aria-label="Result">
<div id="image-box"><span class="empty">The image appears here.</span><img id="image" alt=""></div>
<progress id="progress" max="1" value="0"></progress>
<p id="status" role="status" aria-live="polite">Paste a key, describe an image, Generate.</p>
<p id="metrics"></p>
</section>
</main>
<section class="snippets panel" aria-label="The same request">
<div class="tabs" role="tablist">${tabs}<button type="button" class="copy" id="copy-snippet">Copy</button></div>
${pres}
</section>
</body>
</html>
`;
}
