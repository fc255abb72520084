// Runs shared/'s CLIP tokenizer inside workerd (Miniflare), the runtime the edge uses, and checks it gives
// the golden ids there too, from the files and from the compiled form: proof that shared/src/tokenizer needs no Node API.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipTokenizer } from '../shared/src/tokenizer/index.ts';
import { referenceDir, referencePath, referenceSkipReason } from './support/reference.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// The worker builds the tokenizer from the posted file texts and tokenizes the posted prompts.
const WORKER = `
import { ClipTokenizer } from ${JSON.stringify(join(root, 'shared/src/tokenizer/index.ts'))};
export default {
  async fetch(request) {
    const { vocab, merges, compiled, prompts } = await request.json();
    // compiled: the tokenizer's compiled form (base64), as the edge reads it from KV; else the files.
    const tokenizer = compiled
      ? ClipTokenizer.fromCompiled(Uint8Array.from(atob(compiled), (c) => c.charCodeAt(0)))
      : ClipTokenizer.fromFiles({ vocab, merges });
    const out = prompts.map((p) => ({
      ids: tokenizer.tokenizePrompt(p, { mode: 'truncate', weighting: false }).ids[0],
      weighted: tokenizer.tokenizePrompt(p, { mode: 'chunk' }),
    }));
    return Response.json(out);
  },
};
`;

const files = () => ({
  vocab: readFileSync(referencePath('tokenizer', 'vocab.json'), 'utf8'),
  merges: readFileSync(referencePath('tokenizer', 'merges.txt'), 'utf8'),
});
const compiledBase64 = () => Buffer.from(ClipTokenizer.fromFiles(files()).compile()).toString('base64');

describe.skipIf(!referenceDir)(`CLIP tokenizer in workerd${referenceSkipReason}`, () => {
  let mf: Miniflare;

  beforeAll(async () => {
    const bundle = await build({
      stdin: { contents: WORKER, resolveDir: root, loader: 'js' },
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      write: false,
    });
    mf = new Miniflare({ modules: true, script: bundle.outputFiles[0].text, compatibilityDate: '2025-01-01' });
  });
  afterAll(async () => {
    await mf?.dispose();
  });

  it.each(['files', 'compiled'] as const)(
    'reproduces the golden ids of every reference prompt and parses weights, without Node APIs (%s)',
    async (form) => {
      const cases = readFileSync(referencePath('tokenizer_cases.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as { prompt: string; ids: number[] });
      const prompts = [...cases.map((c) => c.prompt), '(cat:1.5) BREAK 😀 &amp; \u0000'];
      const res = await mf.dispatchFetch('http://tokenizer.test/', {
        method: 'POST',
        body: JSON.stringify({ ...(form === 'files' ? files() : { compiled: compiledBase64() }), prompts }),
      });
      expect(res.status).toBe(200);
      const out = (await res.json()) as Array<{ ids: number[]; weighted: { ids: number[][]; weights: number[][] } }>;
      for (const [i, c] of cases.entries()) expect(out[i].ids, c.prompt).toEqual(c.ids);
      const last = out[out.length - 1].weighted;
      expect(last.ids.length).toBe(2);
      expect(last.weights[0].slice(0, 3)).toEqual([1, 1.5, 1]);
    },
  );
});
