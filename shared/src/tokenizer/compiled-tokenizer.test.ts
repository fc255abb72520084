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

  it('refuses other versions and truncated bytes, naming the problem', () => {
    const bytes = ClipTokenizer.fromFiles(smallFiles()).compile();
    const other = bytes.slice();
    new DataView(other.buffer).setUint32(4, FORMAT_VERSION + 1, true);
    expect(() => ClipTokenizer.fromCompiled(other)).toThrow(CompiledTokenizerError);
    expect(() => ClipTokenizer.fromCompiled(other)).toThrow(`must be version 1 or 2, got ${FORMAT_VERSION + 1}`);
    expect(() => ClipTokenizer.fromCompiled(bytes.subarray(0, bytes.length - 4))).toThrow(
      /version 2 must be \d+ bytes for 4 merges, got \d+/,
    );
    expect(() => ClipTokenizer.fromCompiled(new TextEncoder().encode('{"vocab": 1}'))).toThrow(/must start with "SDTK"/);
  });

  it('loads with no per-entry work: the merge-rank index is a view of the stored bytes, not a copy', () => {
    const bytes = ClipTokenizer.fromFiles(smallFiles()).compile();
    const { tables } = decodeCompiled(bytes);
    expect(tables.pairSlots.buffer).toBe(bytes.buffer);
    expect(tables.merges.buffer).toBe(bytes.buffer);
    expect(tables.pairSlots.length).toBe(16);
  });

  it('still reads version 1 (no stored index: it is built on load) and tokenizes the same', () => {
    const files = ClipTokenizer.fromFiles(smallFiles());
    const v2 = files.compile();
    const slots = decodeCompiled(v2).tables.pairSlots.length;
    const v1 = v2.slice(0, v2.length - 4 * slots);
    new DataView(v1.buffer).setUint32(4, 1, true);
    sameOutputs(files, ClipTokenizer.fromCompiled(v1), PROMPTS);
  });

  it('damaged entries give ids inside the vocabulary, never a hang (a full index, negative and out-of-range ids)', () => {
    const files = ClipTokenizer.fromFiles(smallFiles());
    const bytes = files.compile();
    const { tables } = decodeCompiled(bytes);
    tables.pairSlots.fill(2); // every slot taken, none empty: a probe must still end
    tables.merges[2] = -7; // a merged symbol that is no id
    tables.byteSymbol['c'.charCodeAt(0)] = 1 << 30; // a symbol past the vocabulary
    const damaged = ClipTokenizer.fromCompiled(bytes);
    for (const prompt of [...PROMPTS, 'cat cats dog']) {
      for (const id of damaged.encodeBpe(prompt)) {
        expect(id).toBeGreaterThanOrEqual(0);
        expect(id).toBeLessThan(files.vocabSize);
      }
    }
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

  it('is smaller than the files: 1.11 MB (0.59 MB of merges, 0.52 MB of their index) against 1.49 MB', () => {
    const text =
      readFileSync(referencePath('tokenizer', 'vocab.json')).length +
      readFileSync(referencePath('tokenizer', 'merges.txt')).length;
    const size = files.compile().length;
    expect(size).toBeLessThan(text * 0.75);
    expect(decodeCompiled(files.compile()).tables.pairSlots.length).toBe(131_072);
  });
});
