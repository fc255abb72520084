// The embedded model's own BPE vocabulary in the CLIP file format (vocab.json, merges.txt and the tokenizer
// configs), learned deterministically by a small byte-level BPE trainer from the built-in prompt corpus.
import { corpusWordCounts } from './prompt-corpus.ts';

export const BOS_TOKEN = '<|startoftext|>';
export const EOS_TOKEN = '<|endoftext|>';
const END_OF_WORD = '</w>';

/** GPT-2/CLIP byte → printable character table as [byte, char] pairs, in the order the vocabulary lists them. */
export function byteTable(): [number, string][] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table: [number, string][] = printable.map((b) => [b, String.fromCodePoint(b)]);
  // The other bytes map to code points from 256 up, in byte order, and come after the printable ones.
  let extra = 0;
  for (let b = 0; b < 256; b++) if (!printable.includes(b)) table.push([b, String.fromCodePoint(256 + extra++)]);
  return table;
}

export interface BpeVocabulary {
  /** Tokens in id order: bytes, bytes + `</w>`, merged tokens, BOS, EOS. */
  tokens: string[];
  merges: [string, string][];
  bosTokenId: number;
  eosTokenId: number;
}

/**
 * Learns up to `maxMerges` merges: each round merges the most frequent adjacent pair (ties broken by the
 * pair's text, so the result never depends on Map iteration or engine), skipping pairs whose join is
 * already a token so that every vocabulary entry is unique.
 */
export function trainBpe(wordCounts: Map<string, number>, maxMerges: number): BpeVocabulary {
  const table = byteTable();
  const byteChar = new Map(table);
  const byteChars = table.map(([, c]) => c);
  const tokens = [...byteChars, ...byteChars.map((c) => c + END_OF_WORD)];
  const known = new Set(tokens);
  const encoder = new TextEncoder();
  const words = [...wordCounts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([word, count]) => {
      const symbols = [...encoder.encode(word)].map((b) => byteChar.get(b) as string);
      symbols[symbols.length - 1] += END_OF_WORD;
      return { symbols, count };
    });

  const pairCounts = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>();
  const addPairs = (w: number, sign: 1 | -1) => {
    const { symbols, count } = words[w];
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = `${symbols[i]} ${symbols[i + 1]}`;
      const total = (pairCounts.get(key) ?? 0) + sign * count;
      // Dropping spent pairs keeps the per-round scan short.
      if (total > 0) pairCounts.set(key, total);
      else pairCounts.delete(key);
      if (sign > 0) {
        const set = pairWords.get(key);
        if (set) set.add(w);
        else pairWords.set(key, new Set([w]));
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1);

  const merges: [string, string][] = [];
  while (merges.length < maxMerges) {
    let best = '';
    let bestCount = 0;
    for (const [key, count] of pairCounts) {
      if (count < bestCount) continue;
      if (count === bestCount && key >= best) continue;
      if (known.has(key.replace(' ', ''))) continue;
      best = key;
      bestCount = count;
    }
    if (!best) break;
    const [left, right] = best.split(' ');
    const joined = left + right;
    merges.push([left, right]);
    tokens.push(joined);
    known.add(joined);
    for (const w of pairWords.get(best) ?? []) {
      const { symbols } = words[w];
      addPairs(w, -1);
      const next: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
          next.push(joined);
          i++;
        } else next.push(symbols[i]);
      }
      words[w].symbols = next;
      addPairs(w, 1);
    }
    pairWords.delete(best);
  }
  tokens.push(BOS_TOKEN, EOS_TOKEN);
  return { tokens, merges, bosTokenId: tokens.length - 2, eosTokenId: tokens.length - 1 };
}

/** The embedded model's vocabulary: 2048 merges of the built-in corpus (fewer if the corpus runs out). */
export const DEFAULT_MERGES = 2048;

export function buildDefaultVocabulary(): BpeVocabulary {
  return trainBpe(corpusWordCounts(), DEFAULT_MERGES);
}

/**
 * The tokenizer/ folder of a diffusers export, as file name → text. `padToken` is EOS for SD 1.x; SD 2.x's
 * configs say "!" (the first byte token, id 0 in CLIP's vocabulary and in this one).
 */
export function tokenizerFiles(vocab: BpeVocabulary, { padToken = EOS_TOKEN } = {}): Record<string, string> {
  if (!vocab.tokens.includes(padToken)) throw new Error(`padToken ${JSON.stringify(padToken)} is not in the vocabulary`);
  // Written by hand so the entries keep id order (a JS object would move integer-like keys such as "1" first).
  const vocabJson = `{${vocab.tokens.map((t, id) => `${JSON.stringify(t)}:${id}`).join(',')}}`;
  const merges = `${['#version: 0.2', ...vocab.merges.map(([a, b]) => `${a} ${b}`)].join('\n')}\n`;
  const special = { bos_token: BOS_TOKEN, eos_token: EOS_TOKEN, pad_token: padToken, unk_token: EOS_TOKEN };
  const config = {
    tokenizer_class: 'CLIPTokenizer',
    model_max_length: 77,
    do_lower_case: true,
    errors: 'replace',
    add_prefix_space: false,
    ...special,
  };
  return {
    'vocab.json': vocabJson,
    'merges.txt': merges,
    'tokenizer_config.json': `${JSON.stringify(config, null, 2)}\n`,
    'special_tokens_map.json': `${JSON.stringify(special, null, 2)}\n`,
  };
}
