import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { referenceDir, referencePath, referenceSkipReason } from '../../../test/support/reference.ts';
import { BYTE_TO_UNICODE } from './byte-encoder.ts';
import { decodeCompiled, FORMAT_VERSION } from './compiled-tokenizer.ts';
import { ClipTokenizer, CompiledTokenizerError } from './index.ts';

interface TokenizerCase {
  prompt: string;
  ids: number[];
  raw_bpe: number[];
}

/** A small vocabulary with a repeated merge and special ids that are not CLIP's, so every header field is exercised. */
function smallFiles() {
  const tokens = [...BYTE_TO_UNICODE, ...BYTE_TO_UNICODE.map((c) => `${c}</w>`)];
  const merges = [
    ['c', 'a'],
    ['ca', 't</w>'],
    ['c', 'a'], // repeated: takes the last rank, as CLIP does
    ['d', 'o'],
  ];
  for (const [l, r] of merges) if (!tokens.includes(l + r)) tokens.push(l + r);
  tokens.push('<s>', '</s>', '<pad>');
  return {
    vocab: JSON.stringify(Object.fromEntries(tokens.map((t, i) => [t, i]))),
    merges: `#version: 0.2\n${merges.map((m) => m.join(' ')).join('\n')}\n`,
    tokenizerConfig: JSON.stringify({ bos_token: '<s>', eos_token: '</s>', pad_token: '<pad>', model_max_length: 12 }),
  };
}

const PROMPTS = ['a cat, a dog', '(cat:1.5) BREAK dog', 'x'.repeat(300), '日本 😀 &amp; \u0000', ''];

function sameOutputs(a: ClipTokenizer, b: ClipTokenizer, prompts: string[]): void {
  expect([b.bosId, b.eosId, b.padId, b.unkId, b.modelMaxLength, b.vocabSize]).toEqual([
    a.bosId,
    a.eosId,
    a.padId,
    a.unkId,
    a.modelMaxLength,
    a.vocabSize,
  ]);
  for (const p of prompts) {
    expect(b.encodeBpe(p), p).toEqual(a.encodeBpe(p));
    expect(b.tokenizePrompt(p, { mode: 'chunk' }), p).toEqual(a.tokenizePrompt(p, { mode: 'chunk' }));
    expect(b.tokenizePrompt(p, { mode: 'truncate', weighting: false }), p).toEqual(
      a.tokenizePrompt(p, { mode: 'truncate', weighting: false }),
    );
  }
}

describe('compiled tokenizer', () => {
  it('tokenizes as the files it was compiled from (special ids, window length, repeated merge)', () => {
    const files = ClipTokenizer.fromFiles(smallFiles());
    expect(files.modelMaxLength).toBe(12);
    sameOutputs(files, ClipTokenizer.fromCompiled(files.compile()), [...PROMPTS, 'cat</w>', '<s> cat </s>']);
  });

  it('reads from an unaligned view (a KV value need not start on a 4-byte boundary)', () => {
    const files = ClipTokenizer.fromFiles(smallFiles());
    const bytes = files.compile();
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    sameOutputs(files, ClipTokenizer.fromCompiled(shifted.subarray(1)), PROMPTS);
  });

  it('refuses other versions and damaged bytes, naming the problem', () => {
    const bytes = ClipTokenizer.fromFiles(smallFiles()).compile();
    const other = bytes.slice();
    new DataView(other.buffer).setUint32(4, FORMAT_VERSION + 1, true);
    expect(() => ClipTokenizer.fromCompiled(other)).toThrow(CompiledTokenizerError);
    expect(() => ClipTokenizer.fromCompiled(other)).toThrow(`must be version ${FORMAT_VERSION}, got ${FORMAT_VERSION + 1}`);
    expect(() => ClipTokenizer.fromCompiled(bytes.subarray(0, bytes.length - 4))).toThrow(
      /must be \d+ bytes for 4 merges, got \d+/,
    );
    expect(() => ClipTokenizer.fromCompiled(new TextEncoder().encode('{"vocab": 1}'))).toThrow(/must start with "SDTK"/);
    const negative = bytes.slice();
    new DataView(negative.buffer).setInt32(negative.length - 4, -5, true);
    expect(() => ClipTokenizer.fromCompiled(negative)).toThrow(/must be a non-negative id, got -5/);
  });

  it('stores no vocabulary strings: ids only, besides the special words', () => {
    const { header, tables } = decodeCompiled(ClipTokenizer.fromFiles(smallFiles()).compile());
    expect(header.specialWords.map(([w]) => w).sort()).toEqual(['</s>', '<s>', '<|endoftext|>', '<|startoftext|>'].sort());
    expect(tables.merges.length).toBe(3 * 4);
  });
});

describe.skipIf(!referenceDir)(`compiled CLIP tokenizer on the goldens (tokenizer_cases.jsonl)${referenceSkipReason}`, () => {
  const cases: TokenizerCase[] = referenceDir
    ? readFileSync(referencePath('tokenizer_cases.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as TokenizerCase)
    : [];
  const files = referenceDir
    ? ClipTokenizer.fromFiles({
        vocab: readFileSync(referencePath('tokenizer', 'vocab.json'), 'utf8'),
        merges: readFileSync(referencePath('tokenizer', 'merges.txt'), 'utf8'),
        tokenizerConfig: readFileSync(referencePath('tokenizer', 'tokenizer_config.json'), 'utf8'),
      })
    : (undefined as unknown as ClipTokenizer);
  const compiled = referenceDir ? ClipTokenizer.fromCompiled(files.compile()) : (undefined as unknown as ClipTokenizer);

  it('matches the golden raw BPE and ids of every case', () => {
    expect(cases.length).toBe(158);
    const wrong = cases.filter(
      (c) =>
        JSON.stringify(compiled.encodeBpe(c.prompt)) !== JSON.stringify(c.raw_bpe) ||
        JSON.stringify(compiled.tokenizePrompt(c.prompt, { mode: 'truncate', weighting: false }).ids[0]) !==
          JSON.stringify(c.ids),
    );
    expect(wrong.map((c) => c.prompt)).toEqual([]);
  });

  it('agrees with the file-based tokenizer on every golden prompt, in both modes, with weighting', () => {
    sameOutputs(files, compiled, [...cases.map((c) => c.prompt), ...PROMPTS]);
  });

  it('is a fraction of the files: 0.59 MB against 1.49 MB of vocab.json + merges.txt', () => {
    const text =
      readFileSync(referencePath('tokenizer', 'vocab.json')).length +
      readFileSync(referencePath('tokenizer', 'merges.txt')).length;
    expect(files.compile().length).toBeLessThan(text / 2);
  });
});
