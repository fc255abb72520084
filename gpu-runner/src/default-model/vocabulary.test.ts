import { ClipTokenizer } from '@sd/shared/tokenizer/index';
import { describe, expect, it } from 'vitest';
import { BOS_TOKEN, buildDefaultVocabulary, byteTable, EOS_TOKEN, tokenizerFiles, trainBpe } from './vocabulary.ts';

describe('embedded BPE vocabulary', () => {
  const vocab = buildDefaultVocabulary();
  const files = tokenizerFiles(vocab);

  it('lists 256 byte tokens, 256 end-of-word byte tokens, the merges, then BOS and EOS as the last ids', () => {
    const parsed = JSON.parse(files['vocab.json']) as Record<string, number>;
    const entries = Object.entries(parsed);
    expect(entries.length).toBe(512 + vocab.merges.length + 2);
    expect(new Set(Object.values(parsed)).size).toBe(entries.length);
    expect(parsed[BOS_TOKEN]).toBe(entries.length - 2);
    expect(parsed[EOS_TOKEN]).toBe(entries.length - 1);
    expect(parsed['!']).toBe(0);
    expect(parsed['!</w>']).toBe(256);
    for (const [i, [a, b]] of vocab.merges.entries()) expect(parsed[a + b]).toBe(512 + i);
    expect(vocab.merges.length).toBeGreaterThanOrEqual(1500);
    expect(vocab.merges.length).toBeLessThanOrEqual(3000);
  });

  it('keeps the byte table of GPT-2/CLIP (printable bytes first, the rest shifted to 256+)', () => {
    const table = byteTable();
    expect(table.length).toBe(256);
    expect(table[0]).toEqual([33, '!']);
    expect(table.find(([b]) => b === 32)?.[1]).toBe('Ġ');
    expect(new Set(table.map(([, c]) => c)).size).toBe(256);
  });

  it('writes merges.txt with the #version header and one pair per line', () => {
    const lines = files['merges.txt'].trimEnd().split('\n');
    expect(lines[0]).toBe('#version: 0.2');
    expect(lines.length).toBe(vocab.merges.length + 1);
    for (const line of lines.slice(1)) expect(line).toMatch(/^\S+ \S+$/);
  });

  it('writes tokenizer configs that pad with EOS at 77 tokens, as SD 1.x', () => {
    const config = JSON.parse(files['tokenizer_config.json']);
    expect(config).toMatchObject({ model_max_length: 77, pad_token: EOS_TOKEN, bos_token: BOS_TOKEN, eos_token: EOS_TOKEN });
    expect(JSON.parse(files['special_tokens_map.json'])).toMatchObject({ pad_token: EOS_TOKEN });
  });

  it('loads in the project CLIP tokenizer and encodes corpus words as single tokens', () => {
    const tokenizer = ClipTokenizer.fromFiles({
      vocab: files['vocab.json'],
      merges: files['merges.txt'],
      tokenizerConfig: files['tokenizer_config.json'],
      specialTokensMap: files['special_tokens_map.json'],
    });
    expect(tokenizer.bosId).toBe(vocab.bosTokenId);
    expect(tokenizer.eosId).toBe(vocab.eosTokenId);
    const ids = tokenizer.encodeBpe('a lighthouse at dusk');
    expect(ids.map((id) => vocab.tokens[id])).toEqual(['a</w>', 'lighthouse</w>', 'at</w>', 'dusk</w>']);
    // A word outside the corpus still encodes, as several sub-word tokens.
    expect(tokenizer.encodeBpe('zyxwvutsrq').length).toBeGreaterThan(1);
  });

  it('is deterministic and breaks count ties by the pair text', () => {
    // a b a b</w>: three pairs of count 1; "a b" sorts first, then "a b</w>" before "ab a".
    expect(trainBpe(new Map([['abab', 1]]), 10).merges).toEqual([
      ['a', 'b'],
      ['a', 'b</w>'],
      ['ab', 'ab</w>'],
    ]);
    expect(buildDefaultVocabulary().merges).toEqual(vocab.merges);
  });
});
