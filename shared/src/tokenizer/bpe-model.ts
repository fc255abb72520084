// The byte-level BPE model with CLIP's `</w>` end-of-word marker: vocab.json + merges.txt in, ids out.
// Symbols are handled as integer ids (no string concatenation while merging) and words are cached.
import { BYTE_TO_UNICODE } from './byte-encoder.ts';

const END_OF_WORD = '</w>';
const DEFAULT_CACHE_LIMIT = 50_000;

export interface BpeModelOptions {
  /** Id used for a symbol that BPE produces but the vocabulary lacks (a malformed vocabulary). */
  unkId: number;
  /** Words whose ids are fixed and never BPE-merged (CLIP's `<|startoftext|>`, `<|endoftext|>`). */
  specialWords?: ReadonlyMap<string, number>;
  /** Cached words before the cache is emptied; bounds memory on a long-running edge isolate. */
  cacheLimit?: number;
}

/** Parses vocab.json text into token -> id; throws naming the problem when it is not a JSON object of ints. */
export function parseVocab(vocabJson: string): Map<string, number> {
  let raw: unknown;
  try {
    raw = JSON.parse(vocabJson);
  } catch (err) {
    throw new Error(`vocab must be JSON (vocab.json), got a parse error: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error('vocab must be a JSON object of token -> id (vocab.json)');
  }
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(raw)) {
    if (!Number.isInteger(id) || (id as number) < 0) {
      throw new Error(`vocab id of ${JSON.stringify(token)} must be a non-negative integer, got ${JSON.stringify(id)}`);
    }
    vocab.set(token, id as number);
  }
  return vocab;
}

/** Parses merges.txt text into [left, right] pairs in rank order (the `#version` header is skipped). */
export function parseMerges(mergesTxt: string): Array<[string, string]> {
  const merges: Array<[string, string]> = [];
  const lines = mergesTxt.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
    if (line === '' || (i === 0 && line.startsWith('#version'))) continue;
    const space = line.indexOf(' ');
    if (space <= 0 || space === line.length - 1 || line.indexOf(' ', space + 1) !== -1) {
      throw new Error(`merges line ${i + 1} must be "left right", got ${JSON.stringify(line.slice(0, 80))}`);
    }
    merges.push([line.slice(0, space), line.slice(space + 1)]);
  }
  return merges;
}

export class BpeModel {
  readonly vocab: ReadonlyMap<string, number>;
  private readonly unkId: number;
  private readonly specialWords: ReadonlyMap<string, number>;
  private readonly cacheLimit: number;
  private readonly cache = new Map<string, readonly number[]>();
  /** Symbol id -> vocab id (-1 when the symbol exists only as a merge product outside the vocab). */
  private readonly symbolToVocab: number[] = [];
  /** (left symbol * symbolCount + right symbol) -> merge rank. */
  private readonly pairRank = new Map<number, number>();
  /** merge rank -> the merged symbol id. */
  private readonly mergedSymbol: Int32Array;
  private readonly symbolCount: number;
  private readonly byteSymbol = new Int32Array(256);
  private readonly byteEndSymbol = new Int32Array(256);
  private readonly utf8 = new TextEncoder();

  constructor(vocab: ReadonlyMap<string, number>, merges: ReadonlyArray<readonly [string, string]>, options: BpeModelOptions) {
    this.vocab = vocab;
    this.unkId = options.unkId;
    this.specialWords = options.specialWords ?? new Map();
    this.cacheLimit = options.cacheLimit ?? DEFAULT_CACHE_LIMIT;

    // Give every symbol string a dense id: vocab tokens first, then merge parts the vocab lacks.
    const symbolIds = new Map<string, number>();
    const symbolOf = (s: string): number => {
      let id = symbolIds.get(s);
      if (id === undefined) {
        id = this.symbolToVocab.length;
        symbolIds.set(s, id);
        this.symbolToVocab.push(vocab.get(s) ?? -1);
      }
      return id;
    };
    for (const token of vocab.keys()) symbolOf(token);
    for (let b = 0; b < 256; b++) {
      this.byteSymbol[b] = symbolOf(BYTE_TO_UNICODE[b]);
      this.byteEndSymbol[b] = symbolOf(BYTE_TO_UNICODE[b] + END_OF_WORD);
    }
    const mergeSymbols = merges.map(([left, right]) => [symbolOf(left), symbolOf(right), symbolOf(left + right)]);
    this.symbolCount = this.symbolToVocab.length;
    this.mergedSymbol = new Int32Array(merges.length);
    for (let rank = 0; rank < mergeSymbols.length; rank++) {
      const [left, right, merged] = mergeSymbols[rank];
      const key = left * this.symbolCount + right;
      // A repeated pair takes its last rank, as CLIP's dict(zip(merges, range(len(merges)))) does.
      this.pairRank.set(key, rank);
      this.mergedSymbol[rank] = merged;
    }
  }

  /** The vocabulary ids of one pre-tokenized word (its bytes, `</w>` on the last, merged by rank). */
  encodeWord(word: string): readonly number[] {
    const cached = this.cache.get(word);
    if (cached !== undefined) return cached;
    const special = this.specialWords.get(word);
    const ids = special !== undefined ? [special] : this.merge(word);
    if (this.cache.size >= this.cacheLimit) this.cache.clear();
    this.cache.set(word, ids);
    return ids;
  }

  /** Number of cached words (for tests and benchmarks). */
  get cacheSize(): number {
    return this.cache.size;
  }

  clearCache(): void {
    this.cache.clear();
  }

  private merge(word: string): number[] {
    const bytes = this.utf8.encode(word);
    const n = bytes.length;
    if (n === 0) return [];
    let symbols: number[] = new Array(n);
    for (let i = 0; i < n - 1; i++) symbols[i] = this.byteSymbol[bytes[i]];
    symbols[n - 1] = this.byteEndSymbol[bytes[n - 1]];

    const count = this.symbolCount;
    while (symbols.length > 1) {
      // 1. Find the adjacent pair with the lowest merge rank.
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i < symbols.length - 1; i++) {
        const rank = this.pairRank.get(symbols[i] * count + symbols[i + 1]);
        if (rank !== undefined && rank < bestRank) bestRank = rank;
      }
      if (bestRank === Number.POSITIVE_INFINITY) break;
      // 2. Merge every non-overlapping occurrence of that pair, left to right.
      const merged = this.mergedSymbol[bestRank];
      const next: number[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i < symbols.length - 1 && this.pairRank.get(symbols[i] * count + symbols[i + 1]) === bestRank) {
          next.push(merged);
          i++;
        } else {
          next.push(symbols[i]);
        }
      }
      symbols = next;
    }

    const ids = new Array<number>(symbols.length);
    for (let i = 0; i < symbols.length; i++) {
      const id = this.symbolToVocab[symbols[i]];
      ids[i] = id >= 0 ? id : this.unkId;
    }
    return ids;
  }
}
