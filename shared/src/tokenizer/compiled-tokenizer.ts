// The compiled CLIP tokenizer: everything ClipTokenizer needs at run time as ids, in one binary that loads as typed-array
// views with no per-entry work (vs. parsing ~3 MB of vocab.json + merges.txt and building the merge index), written at
// upload time by edge/scripts/upload-tokenizer.ts.
import { errorMessage } from '../error-message.ts';
import { type BpeTables, buildPairSlots, pairSlotCount } from './bpe-model.ts';

/**
 * Layout (little-endian):
 *   0   "SDTK"                       magic
 *   4   u32 format version           FORMAT_VERSION (2); version 1 is still read; a reader refuses others (the files
 *                                    stay the fallback)
 *   8   u32 header length H          bytes of UTF-8 JSON (CompiledHeader), space-padded to a multiple of 4
 *   12  header JSON
 *   12+H int32[256] byteSymbol, int32[256] byteEndSymbol, int32[3 * mergeCount] merges (left, right, merged per rank),
 *        then (version 2) int32[pairSlotCount(mergeCount)] pairSlots: the merge-rank hash index of bpe-model.ts's
 *        buildPairSlots, stored ready to probe (version 1 lacks it, and a reader builds it: ~10 ms for CLIP's merges).
 * The vocabulary strings are not stored: BPE runs on ids, and the only strings it needs (special words) are in the header.
 * Entries are not checked one by one on load (that would cost what the stored index saves); BPE reads them defensively,
 * so damaged bytes give wrong ids, never a hang. The upload script checks the compiled form against the files.
 */
const MAGIC = 0x4b544453; // "SDTK" read as a little-endian u32
export const FORMAT_VERSION = 2;
const READABLE_VERSIONS = [1, 2];
const PREFIX_BYTES = 12;

/** The tokenizer's settings, resolved from tokenizer_config.json / special_tokens_map.json at compile time. */
export interface CompiledHeader {
  bosId: number;
  eosId: number;
  padId: number;
  unkId: number;
  modelMaxLength: number;
  vocabSize: number;
  /** Words whose ids are fixed and never BPE-merged. */
  specialWords: Array<[string, number]>;
  vocabEnd: number;
  mergeCount: number;
}

export interface CompiledTokenizer {
  header: CompiledHeader;
  tables: BpeTables;
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function encodeCompiled({ header, tables }: CompiledTokenizer): Uint8Array {
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 4) * 4;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  if (tables.pairSlots.length !== pairSlotCount(tables.merges.length / 3)) {
    throw new Error(`pairSlots must have ${pairSlotCount(tables.merges.length / 3)} slots, got ${tables.pairSlots.length}`);
  }
  const ints = 512 + tables.merges.length + tables.pairSlots.length;
  const out = new Uint8Array(PREFIX_BYTES + json.length + ints * 4);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, FORMAT_VERSION, true);
  view.setUint32(8, json.length, true);
  out.set(json, PREFIX_BYTES);
  let at = PREFIX_BYTES + json.length;
  for (const array of [tables.byteSymbol, tables.byteEndSymbol, tables.merges, tables.pairSlots]) {
    for (let i = 0; i < array.length; i++, at += 4) view.setInt32(at, array[i], true);
  }
  return out;
}

export class CompiledTokenizerError extends Error {
  override name = 'CompiledTokenizerError';
}

const isId = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;

function checkHeader(raw: unknown): CompiledHeader {
  const h = raw as Partial<CompiledHeader> | null;
  if (h === null || typeof h !== 'object') throw new CompiledTokenizerError('compiled tokenizer header must be a JSON object');
  for (const field of ['bosId', 'eosId', 'padId', 'unkId', 'modelMaxLength', 'vocabSize', 'vocabEnd', 'mergeCount'] as const) {
    if (!isId(h[field])) {
      throw new CompiledTokenizerError(
        `compiled tokenizer header ${field} must be a non-negative integer, got ${JSON.stringify(h[field])}`,
      );
    }
  }
  const header = h as CompiledHeader;
  for (const field of ['bosId', 'eosId', 'padId', 'unkId'] as const) {
    if (header[field] >= header.vocabSize) {
      throw new CompiledTokenizerError(
        `compiled tokenizer ${field} ${header[field]} must be below vocabSize ${header.vocabSize}`,
      );
    }
  }
  if (
    !Array.isArray(header.specialWords) ||
    !header.specialWords.every((e) => Array.isArray(e) && typeof e[0] === 'string' && isId(e[1]) && e[1] < header.vocabSize)
  ) {
    throw new CompiledTokenizerError('compiled tokenizer specialWords must be [word, id] pairs with ids in the vocabulary');
  }
  return header;
}

/** Reads a compiled tokenizer; throws CompiledTokenizerError naming what is wrong (another version, truncation). */
export function decodeCompiled(bytes: Uint8Array): CompiledTokenizer {
  if (bytes.length < PREFIX_BYTES)
    throw new CompiledTokenizerError(`compiled tokenizer must be at least ${PREFIX_BYTES} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new CompiledTokenizerError('compiled tokenizer must start with "SDTK"');
  const version = view.getUint32(4, true);
  if (!READABLE_VERSIONS.includes(version)) {
    throw new CompiledTokenizerError(
      `compiled tokenizer format must be version ${READABLE_VERSIONS.join(' or ')}, got ${version} (re-run tokenizer:upload)`,
    );
  }
  const headerBytes = view.getUint32(8, true);
  if (headerBytes % 4 !== 0 || PREFIX_BYTES + headerBytes > bytes.length) {
    throw new CompiledTokenizerError(`compiled tokenizer header length ${headerBytes} does not fit its ${bytes.length} bytes`);
  }
  let rawHeader: unknown;
  try {
    rawHeader = JSON.parse(new TextDecoder().decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes)));
  } catch (err) {
    throw new CompiledTokenizerError(`compiled tokenizer header must be JSON: ${errorMessage(err)}`);
  }
  const header = checkHeader(rawHeader);
  const start = PREFIX_BYTES + headerBytes;
  const slotCount = version >= 2 ? pairSlotCount(header.mergeCount) : 0;
  const ints = 512 + 3 * header.mergeCount + slotCount;
  if (bytes.length !== start + ints * 4) {
    throw new CompiledTokenizerError(
      `compiled tokenizer version ${version} must be ${start + ints * 4} bytes for ${header.mergeCount} merges, got ${bytes.length}`,
    );
  }
  let all: Int32Array;
  if (littleEndian && (bytes.byteOffset + start) % 4 === 0) {
    all = new Int32Array(bytes.buffer, bytes.byteOffset + start, ints);
  } else {
    all = new Int32Array(ints);
    for (let i = 0; i < ints; i++) all[i] = view.getInt32(start + 4 * i, true);
  }
  const mergesEnd = 512 + 3 * header.mergeCount;
  const merges = all.subarray(512, mergesEnd);
  return {
    header,
    tables: {
      vocabEnd: header.vocabEnd,
      byteSymbol: all.subarray(0, 256),
      byteEndSymbol: all.subarray(256, 512),
      merges,
      pairSlots: version >= 2 ? all.subarray(mergesEnd) : buildPairSlots(merges),
    },
  };
}
