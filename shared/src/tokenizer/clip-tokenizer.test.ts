import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { referenceDir, referencePath, referenceSkipReason } from '../../../test/support/reference.ts';
import { BpeModel, compileBpe } from './bpe-model.ts';
import { BYTE_TO_UNICODE } from './byte-encoder.ts';
import { ClipTokenizer } from './index.ts';

interface TokenizerCase {
  prompt: string;
  ids: number[];
  length: number;
  raw_bpe: number[];
}

function loadReferenceTokenizer(): ClipTokenizer {
  return ClipTokenizer.fromFiles({
    vocab: readFileSync(referencePath('tokenizer', 'vocab.json'), 'utf8'),
    merges: readFileSync(referencePath('tokenizer', 'merges.txt'), 'utf8'),
    tokenizerConfig: readFileSync(referencePath('tokenizer', 'tokenizer_config.json'), 'utf8'),
  });
}

/** A tiny vocabulary in the CLIP file format whose special ids are not CLIP's, to prove they are read. */
function tinyFiles(extra: { tokenizerConfig?: string; specialTokensMap?: string } = {}) {
  // GPT-2 order, as CLIP's vocab.json: printable bytes first, so "!" is id 0.
  const bytes = [...BYTE_TO_UNICODE].sort((a, b) => (a.charCodeAt(0) >= 256 ? 1 : 0) - (b.charCodeAt(0) >= 256 ? 1 : 0));
  const tokens = [...bytes, ...bytes.map((c) => `${c}</w>`)];
  const merges = [
    ['c', 'a'],
    ['ca', 't</w>'],
    ['d', 'o'],
    ['do', 'g</w>'],
  ];
  for (const [l, r] of merges) tokens.push(l + r);
  tokens.push('<|startoftext|>', '<|endoftext|>');
  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  return {
    vocab: JSON.stringify(vocab),
    merges: `#version: 0.2\n${merges.map((m) => m.join(' ')).join('\n')}\n`,
    ...extra,
  };
}

describe.skipIf(!referenceDir)(`CLIP tokenizer goldens (reference tokenizer_cases.jsonl, exact)${referenceSkipReason}`, () => {
  const cases: TokenizerCase[] = referenceDir
    ? readFileSync(referencePath('tokenizer_cases.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as TokenizerCase)
    : [];
  const tokenizer = referenceDir ? loadReferenceTokenizer() : (undefined as unknown as ClipTokenizer);

  it('has all 158 cases of corpus A', () => {
    expect(cases.length).toBe(158);
  });

  it('reproduces raw_bpe of every case (OpenAI SimpleTokenizer, ftfy = identity)', () => {
    const mismatches = cases.filter((c) => JSON.stringify(tokenizer.encodeBpe(c.prompt)) !== JSON.stringify(c.raw_bpe));
    expect(mismatches.map((c) => c.prompt)).toEqual([]);
  });

  it('reproduces the 77 ids and the length of every case in truncate mode with weighting off', () => {
    for (const c of cases) {
      const out = tokenizer.tokenizePrompt(c.prompt, { mode: 'truncate', weighting: false });
      expect(out.ids, c.prompt).toEqual([c.ids]);
      expect(out.tokenCount, c.prompt).toBe(c.raw_bpe.length);
      expect(Math.min(out.tokenCount, 75) + 2, c.prompt).toBe(c.length);
      expect(out.truncated, c.prompt).toBe(c.raw_bpe.length > 75);
      expect(out.weights[0].every((w) => w === 1)).toBe(true);
    }
  });

  it('gives chunk windows that concatenate back to raw_bpe for plain prompts without commas', () => {
    const long = cases.filter((c) => c.raw_bpe.length > 75 && !c.prompt.includes(','));
    for (const c of long) {
      const out = tokenizer.tokenizePrompt(c.prompt, { mode: 'chunk', weighting: false });
      const body = out.ids.flatMap((w) => w.slice(1, 1 + 75)).filter((id) => id !== tokenizer.eosId);
      expect(body).toEqual(c.raw_bpe.filter((id) => id !== tokenizer.eosId));
      expect(out.ids.length).toBe(Math.ceil(c.raw_bpe.length / 75));
    }
  });

  it('reads the ids of the reference files', () => {
    expect([tokenizer.bosId, tokenizer.eosId, tokenizer.padId, tokenizer.modelMaxLength, tokenizer.vocabSize]).toEqual([
      49406, 49407, 49407, 77, 49408,
    ]);
  });

  it('tokenizes weighted prompts on the inner text only, with aligned weights', () => {
    const out = tokenizer.tokenizePrompt('a (red:1.5) [cube]', { mode: 'truncate' });
    const [a, red, cube] = [tokenizer.encodeBpe('a'), tokenizer.encodeBpe('red'), tokenizer.encodeBpe('cube')];
    expect(out.ids[0].slice(0, 5)).toEqual([49406, ...a, ...red, ...cube, 49407]);
    expect(out.weights[0].slice(0, 5)).toEqual([1, 1, 1.5, 1 / 1.1, 1]);
    expect(out.weights[0].slice(5).every((w) => w === 1)).toBe(true);
    expect(out.tokenCount).toBe(3);
    const literal = tokenizer.tokenizePrompt('a (red:1.5) [cube]', { mode: 'truncate', weighting: false });
    expect(literal.tokenCount).toBeGreaterThan(3);
    expect(literal.ids[0]).toContain(tokenizer.encodeBpe('(')[0]);
  });

  it('never throws on emoji, CJK, controls, lone surrogates, entities and odd syntax', () => {
    const nasty = [
      '👩‍👩‍👧 🇫🇷 ❤️',
      '東京タワー 한국어 नमस्ते',
      '\u0000\u0007\u001b\u007f\u0085\ufeff\u200b',
      '\ud800 lone \udfff surrogates',
      '&#0; &#xD800; &#99999999999999999999; &notit; &constructor; &amp',
      '((((( ]]]] \\ :1.2) (x:) (:1.5) BREAK BREAK',
      '<|startoftext|><|endoftext|>',
      'ͅ ꙮ 𝓐𝓑𝓒',
      'x'.repeat(5000),
    ];
    for (const p of nasty) {
      for (const mode of ['truncate', 'chunk'] as const) {
        for (const weighting of [true, false]) {
          const out = tokenizer.tokenizePrompt(p, { mode, weighting });
          for (const w of out.ids) expect(w.length).toBe(77);
          expect(out.weights.map((w) => w.length)).toEqual(out.ids.map(() => 77));
          for (const w of out.weights) for (const x of w) expect(Number.isFinite(x)).toBe(true);
        }
      }
    }
  });

  it('caches words and gives the same ids from the cache', () => {
    const fresh = loadReferenceTokenizer();
    const first = fresh.encodeBpe('a photograph of an astronaut riding a horse');
    expect(fresh.cacheSize).toBeGreaterThan(0);
    expect(fresh.encodeBpe('a photograph of an astronaut riding a horse')).toEqual(first);
    fresh.clearCache();
    expect(fresh.cacheSize).toBe(0);
  });
});

describe('ClipTokenizer on a small custom vocabulary', () => {
  it('reads BOS, EOS, pad and max length from the files instead of assuming CLIP ids', () => {
    const t = ClipTokenizer.fromFiles(tinyFiles({ tokenizerConfig: '{"model_max_length": 8}' }));
    expect(t.bosId).toBe(516);
    expect(t.eosId).toBe(517);
    expect(t.padId).toBe(517);
    expect(t.modelMaxLength).toBe(8);
    expect(t.vocabSize).toBe(518);
    expect(t.encodeBpe('Cat dog')).toEqual([513, 515]);
    expect(t.tokenizePrompt('cat dog', { mode: 'truncate' }).ids).toEqual([[516, 513, 515, 517, 517, 517, 517, 517]]);
  });

  it('pads with "!" (id 0) when the config says so, as SD 2.x does', () => {
    const t = ClipTokenizer.fromFiles(tinyFiles({ specialTokensMap: '{"pad_token": {"content": "!"}}' }));
    expect(t.padId).toBe(0);
    expect(t.modelMaxLength).toBe(77);
    const ids = t.tokenizePrompt('cat', { mode: 'truncate' }).ids[0];
    expect(ids.slice(0, 4)).toEqual([516, 513, 517, 0]);
    expect(ids.length).toBe(77);
  });

  it('lets special_tokens_map override tokenizer_config, as transformers does', () => {
    const t = ClipTokenizer.fromFiles(
      tinyFiles({ tokenizerConfig: '{"pad_token": "<|endoftext|>"}', specialTokensMap: '{"pad_token": "!"}' }),
    );
    expect(t.padId).toBe(0);
  });

  it('maps a huge transformers model_max_length placeholder to 77', () => {
    expect(ClipTokenizer.fromFiles(tinyFiles({ tokenizerConfig: '{"model_max_length": 1e30}' })).modelMaxLength).toBe(77);
  });

  it('rejects unusable files with a message naming the field and value', () => {
    expect(() => ClipTokenizer.fromFiles({ vocab: '[1]', merges: '' })).toThrow(/vocab must be a JSON object/);
    expect(() => ClipTokenizer.fromFiles({ vocab: '{"a": -1}', merges: '' })).toThrow(
      /vocab id of "a" must be a non-negative integer, got -1/,
    );
    expect(() => ClipTokenizer.fromFiles({ ...tinyFiles(), merges: 'a b c' })).toThrow(/merges line 1 must be "left right"/);
    expect(() => ClipTokenizer.fromFiles(tinyFiles({ tokenizerConfig: '{"pad_token": "<pad>"}' }))).toThrow(
      /pad_token "<pad>" is not in the vocabulary/,
    );
    expect(() => ClipTokenizer.fromFiles(tinyFiles({ tokenizerConfig: '{"model_max_length": 2}' }))).toThrow(
      /model_max_length must be an integer >= 3, got 2/,
    );
    expect(() => ClipTokenizer.fromFiles(tinyFiles({ tokenizerConfig: 'nope' }))).toThrow(/tokenizerConfig must be JSON/);
  });

  it('rejects an unknown mode naming the value', () => {
    const t = ClipTokenizer.fromFiles(tinyFiles());
    // @ts-expect-error: a caller outside TypeScript can pass anything
    expect(() => t.tokenizePrompt('cat', { mode: 'wrap' })).toThrow(/mode must be "truncate" or "chunk", got "wrap"/);
  });
});

describe('BPE word cache bounds', () => {
  it('does not cache very long words, and empties itself at its size limit', () => {
    const model = new BpeModel(compileBpe(new Map([['a', 0]]), []), { unkId: 0, cacheLimit: 3 });
    model.encodeWord('x'.repeat(101));
    expect(model.cacheSize).toBe(0);
    for (const w of ['a', 'b', 'c']) model.encodeWord(w);
    expect(model.cacheSize).toBe(3);
    model.encodeWord('d');
    expect(model.cacheSize).toBe(1);
  });
});
