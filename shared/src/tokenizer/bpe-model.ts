// The byte-level BPE model with CLIP's `</w>` end-of-word marker: vocab.json + merges.txt in, ids out.
// Symbols are handled as integer ids (no string concatenation while merging), from tables compileBpe builds; words are cached.
import { errorMessage } from '../error-message.ts';
import { BYTE_TO_UNICODE } from './byte-encoder.ts';

const END_OF_WORD = '</w>';
const DEFAULT_CACHE_LIMIT = 50_000;
// Longer words are not cached: they rarely repeat, and a hostile prompt would otherwise pin their memory.
const MAX_CACHED_WORD_LENGTH = 100;

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
    throw new Error(`vocab must be JSON (vocab.json), got a parse error: ${errorMessage(err)}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error('vocab must be a JSON object of token -> id (vocab.json)');
  }
  const vocab = new Map<string, number>();
  const entries = raw as Record<string, unknown>;
  for (const token in entries) {
    const id = entries[token];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new Error(`vocab id of ${JSON.stringify(token)} must be a non-negative integer, got ${JSON.stringify(id)}`);
    }
    vocab.set(token, id);
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

/**
 * The merge-rank index: an open-addressing hash table (linear probing) from a symbol pair (left, right) to its merge
 * rank, stored as one Int32Array of ranks per slot (-1 = empty) over the merges table, which holds the pairs. It is
 * built once (compileBpe) and stored in the compiled tokenizer as it is, so loading one costs no per-entry work.
 * The slot function is part of the compiled format (FORMAT_VERSION): change it only with the version.
 */
export function pairSlot(left: number, right: number, mask: number): number {
  return (Math.imul(left, 0x9e3779b1) ^ Math.imul(right, 0x85ebca77)) & mask;
}

/** Slots for `mergeCount` merges: a power of two, at least twice the merges (short probes), with empty slots left. */
export function pairSlotCount(mergeCount: number): number {
  let capacity = 16;
  while (capacity < mergeCount * 2) capacity *= 2;
  return capacity;
}

/** Builds the merge-rank index of a merges table ([left, right, merged] per rank). */
export function buildPairSlots(merges: Int32Array): Int32Array {
  const slots = new Int32Array(pairSlotCount(merges.length / 3)).fill(-1);
  const mask = slots.length - 1;
  for (let rank = 0; rank < merges.length / 3; rank++) {
    const a = merges[3 * rank];
    const b = merges[3 * rank + 1];
    let i = pairSlot(a, b, mask);
    for (;;) {
      const r = slots[i];
      // A repeated pair takes its last rank, as CLIP's dict(zip(merges, range(len(merges)))) does.
      if (r === -1 || (merges[3 * r] === a && merges[3 * r + 1] === b)) break;
      i = (i + 1) & mask;
    }
    slots[i] = rank;
  }
  return slots;
}

/**
 * What BPE needs at run time, all in ids: the vocabulary strings are only needed to build it. Symbols are vocab ids;
 * merge parts the vocabulary lacks get ids from vocabEnd on (they map to unk). This is what a compiled tokenizer stores.
 */
export interface BpeTables {
  /** Largest vocab id + 1. */
  vocabEnd: number;
  /** byte -> symbol of that byte inside a word, and at the end of a word (with `</w>`). */
  byteSymbol: Int32Array;
  byteEndSymbol: Int32Array;
  /** Per merge rank r: [3r] left symbol, [3r + 1] right symbol, [3r + 2] the merged symbol. */
  merges: Int32Array;
  /** The merge-rank index over `merges` (buildPairSlots): a power-of-two count of ranks, -1 for an empty slot. */
  pairSlots: Int32Array;
}

/** Resolves vocab.json's tokens and merges.txt's pairs to ids (done once, at upload time for the edge). */
export function compileBpe(vocab: ReadonlyMap<string, number>, merges: ReadonlyArray<readonly [string, string]>): BpeTables {
  let vocabEnd = 0;
  for (const id of vocab.values()) if (id >= vocabEnd) vocabEnd = id + 1;
  const extra = new Map<string, number>();
  const symbolOf = (s: string): number => {
    const id = vocab.get(s) ?? extra.get(s);
    if (id !== undefined) return id;
    extra.set(s, vocabEnd + extra.size);
    return vocabEnd + extra.size - 1;
  };
  const byteSymbol = new Int32Array(256);
  const byteEndSymbol = new Int32Array(256);
  for (let b = 0; b < 256; b++) {
    byteSymbol[b] = symbolOf(BYTE_TO_UNICODE[b]);
    byteEndSymbol[b] = symbolOf(BYTE_TO_UNICODE[b] + END_OF_WORD);
  }
  const table = new Int32Array(merges.length * 3);
  for (let rank = 0; rank < merges.length; rank++) {
    const [left, right] = merges[rank];
    table[3 * rank] = symbolOf(left);
    table[3 * rank + 1] = symbolOf(right);
    table[3 * rank + 2] = symbolOf(left + right);
  }
  return { vocabEnd, byteSymbol, byteEndSymbol, merges: table, pairSlots: buildPairSlots(table) };
}

export class BpeModel {
  readonly tables: BpeTables;
  private readonly unkId: number;
  private readonly specialWords: ReadonlyMap<string, number>;
  private readonly cacheLimit: number;
  private readonly cache = new Map<string, readonly number[]>();
  private readonly vocabEnd: number;
  /** [left, right, merged] per rank, and the hash index over its pairs (see buildPairSlots). */
  private readonly merges: Int32Array;
  private readonly mergeCount: number;
  private readonly pairSlots: Int32Array;
  private readonly slotMask: number;
  private readonly byteSymbol: Int32Array;
  private readonly byteEndSymbol: Int32Array;
  private readonly utf8 = new TextEncoder();

  constructor(tables: BpeTables, options: BpeModelOptions) {
    this.tables = tables;
    this.unkId = options.unkId;
    this.specialWords = options.specialWords ?? new Map();
    this.cacheLimit = options.cacheLimit ?? DEFAULT_CACHE_LIMIT;
    this.vocabEnd = tables.vocabEnd;
    this.byteSymbol = tables.byteSymbol;
    this.byteEndSymbol = tables.byteEndSymbol;
    this.merges = tables.merges;
    this.mergeCount = Math.floor(tables.merges.length / 3);
    this.pairSlots = tables.pairSlots;
    this.slotMask = tables.pairSlots.length - 1;
  }

  /**
   * The pair's merge rank, or -1 when the pair never merges. Probes at most every slot and ignores ranks outside the
   * table, so a damaged compiled tokenizer gives wrong ids, never a hang or an out-of-range read.
   */
  private rankOf(a: number, b: number): number {
    const slots = this.pairSlots;
    const merges = this.merges;
    let i = pairSlot(a, b, this.slotMask);
    for (let probes = 0; probes <= this.slotMask; probes++) {
      const r = slots[i];
      if (r < 0 || r >= this.mergeCount) return -1;
      if (merges[3 * r] === a && merges[3 * r + 1] === b) return r;
      i = (i + 1) & this.slotMask;
    }
    return -1;
  }

  /** The vocabulary ids of one pre-tokenized word (its bytes, `</w>` on the last, merged by rank). */
  encodeWord(word: string): readonly number[] {
    const cached = this.cache.get(word);
    if (cached !== undefined) return cached;
    const special = this.specialWords.get(word);
    const ids = special !== undefined ? [special] : this.merge(word);
    if (word.length > MAX_CACHED_WORD_LENGTH) return ids;
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
    const symbols: number[] = new Array(n);
    for (let i = 0; i < n - 1; i++) symbols[i] = this.byteSymbol[bytes[i]];
    symbols[n - 1] = this.byteEndSymbol[bytes[n - 1]];

    let length = n;
    while (length > 1) {
      // 1. Find the adjacent pair with the lowest merge rank.
      let best = -1;
      for (let i = 0; i < length - 1; i++) {
        const rank = this.rankOf(symbols[i], symbols[i + 1]);
        if (rank !== -1 && (best === -1 || rank < best)) best = rank;
      }
      if (best === -1) break;
      // 2. Merge every non-overlapping occurrence of that pair, left to right, in place.
      const merged = this.merges[3 * best + 2];
      let out = 0;
      for (let i = 0; i < length; i++) {
        if (i < length - 1 && this.rankOf(symbols[i], symbols[i + 1]) === best) {
          symbols[out++] = merged;
          i++;
        } else {
          symbols[out++] = symbols[i];
        }
      }
      length = out;
    }

    const ids = new Array<number>(length);
    for (let i = 0; i < length; i++) ids[i] = symbols[i] >= 0 && symbols[i] < this.vocabEnd ? symbols[i] : this.unkId;
    return ids;
  }
}
