// The CLIP tokenizer Stable Diffusion uses: built from a model's tokenizer files (text passed in by the
// caller, so it runs in workerd and Node), it turns a prompt into 77-token windows with per-token weights.
import { isBreak, parsePromptWeights } from '../prompt-weights.ts';
import { BpeModel, parseMerges, parseVocab } from './bpe-model.ts';
import { normalizeClipText } from './normalizer.ts';
import { splitClipWords } from './pre-tokenizer.ts';
import {
  chunkWindows,
  type LongPromptMode,
  type PromptWindows,
  type TokenRun,
  truncateWindows,
  type WindowSpec,
} from './prompt-windows.ts';

/** The text of a model's `tokenizer/` files; only vocab and merges are required. */
export interface ClipTokenizerFiles {
  /** vocab.json text. */
  vocab: string;
  /** merges.txt text. */
  merges: string;
  /** tokenizer_config.json text (pad_token, bos/eos/unk_token, model_max_length). */
  tokenizerConfig?: string;
  /** special_tokens_map.json text; overrides tokenizer_config's tokens, as in transformers. */
  specialTokensMap?: string;
}

export interface TokenizePromptOptions {
  mode: LongPromptMode;
  /** Parse A1111 attention syntax and BREAK (default true); false tokenizes the text literally. */
  weighting?: boolean;
}

export type { LongPromptMode, PromptWindows };

const DEFAULT_BOS = '<|startoftext|>';
const DEFAULT_EOS = '<|endoftext|>';
const DEFAULT_MAX_LENGTH = 77;
// transformers writes model_max_length = int(1e30) when a checkpoint sets none; CLIP's real context is 77.
const MAX_SANE_LENGTH = 1_000_000;

type JsonObject = Record<string, unknown>;

function parseJsonObject(text: string | undefined, field: string): JsonObject {
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${field} must be JSON, got a parse error: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${field} must be a JSON object, got ${JSON.stringify(value)?.slice(0, 40)}`);
  }
  return value as JsonObject;
}

/** A special token is either a string or an AddedToken object `{ content: "..." }`. */
function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as JsonObject).content === 'string') {
    return (value as JsonObject).content as string;
  }
  return undefined;
}

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  /** Window length including BOS and EOS (77 for SD); chunks hold modelMaxLength - 2 prompt tokens. */
  readonly modelMaxLength: number;
  /** Largest id + 1. */
  readonly vocabSize: number;
  private readonly bpe: BpeModel;
  private readonly windowSpec: WindowSpec;

  private constructor(bpe: BpeModel, spec: WindowSpec & { unkId: number; vocabSize: number }) {
    this.bpe = bpe;
    this.bosId = spec.bosId;
    this.eosId = spec.eosId;
    this.padId = spec.padId;
    this.unkId = spec.unkId;
    this.modelMaxLength = spec.modelMaxLength;
    this.vocabSize = spec.vocabSize;
    this.windowSpec = {
      bosId: spec.bosId,
      eosId: spec.eosId,
      padId: spec.padId,
      modelMaxLength: spec.modelMaxLength,
      commaId: spec.commaId,
    };
  }

  /** Builds a tokenizer from file contents; throws with the field and value when a file is unusable. */
  static fromFiles(files: ClipTokenizerFiles): ClipTokenizer {
    const vocab = parseVocab(files.vocab);
    const merges = parseMerges(files.merges);
    const config = {
      ...parseJsonObject(files.tokenizerConfig, 'tokenizerConfig'),
      ...parseJsonObject(files.specialTokensMap, 'specialTokensMap'),
    };
    const idOf = (field: string, fallback: string | undefined): number => {
      const token = tokenText(config[field]) ?? fallback;
      const id = token === undefined ? undefined : vocab.get(token);
      if (id === undefined) {
        throw new Error(`${field} ${JSON.stringify(token)} is not in the vocabulary (vocab.json has ${vocab.size} tokens)`);
      }
      return id;
    };
    const bosToken = tokenText(config.bos_token) ?? DEFAULT_BOS;
    const eosToken = tokenText(config.eos_token) ?? DEFAULT_EOS;
    const bosId = idOf('bos_token', DEFAULT_BOS);
    const eosId = idOf('eos_token', DEFAULT_EOS);
    // SD 1.x pads with EOS (HF CLIPTokenizer's default); SD 2.x configs say pad_token "!".
    const padId = idOf('pad_token', eosToken);
    const unkId = idOf('unk_token', eosToken);

    let modelMaxLength = DEFAULT_MAX_LENGTH;
    const configured = config.model_max_length;
    if (configured !== undefined) {
      if (typeof configured !== 'number' || !Number.isInteger(configured) || configured < 3) {
        throw new Error(`model_max_length must be an integer >= 3, got ${JSON.stringify(configured)}`);
      }
      if (configured <= MAX_SANE_LENGTH) modelMaxLength = configured;
    }

    let vocabSize = 0;
    for (const id of vocab.values()) if (id >= vocabSize) vocabSize = id + 1;
    const specialWords = new Map<string, number>([
      [DEFAULT_BOS, vocab.get(DEFAULT_BOS) ?? bosId],
      [DEFAULT_EOS, vocab.get(DEFAULT_EOS) ?? eosId],
      [bosToken, bosId],
      [eosToken, eosId],
    ]);
    const bpe = new BpeModel(vocab, merges, { unkId, specialWords });
    const comma = bpe.encodeWord(',');
    return new ClipTokenizer(bpe, {
      bosId,
      eosId,
      padId,
      unkId,
      modelMaxLength,
      vocabSize,
      commaId: comma.length === 1 ? comma[0] : -1,
    });
  }

  /** Raw BPE ids of a text: CLIP clean-up, split, byte-level BPE; no BOS/EOS, no weighting, no limit. */
  encodeBpe(text: string): number[] {
    const ids: number[] = [];
    for (const word of splitClipWords(normalizeClipText(text))) {
      const wordIds = this.bpe.encodeWord(word);
      for (let i = 0; i < wordIds.length; i++) ids.push(wordIds[i]);
    }
    return ids;
  }

  /**
   * A prompt as model windows of modelMaxLength ids with one weight per id (BOS/EOS/padding weigh 1).
   * `truncate` gives exactly one window; `chunk` gives one window per 75-token chunk.
   */
  tokenizePrompt(prompt: string, options: TokenizePromptOptions): PromptWindows {
    const runs: TokenRun[] = [];
    if (options.weighting === false) {
      runs.push({ ids: this.encodeBpe(prompt), weight: 1 });
    } else {
      // A1111 tokenizes each weighted segment on its own, so clean-up and splitting happen per segment.
      for (const segment of parsePromptWeights(prompt)) {
        runs.push(isBreak(segment) ? 'break' : { ids: this.encodeBpe(segment.text), weight: segment.weight });
      }
    }
    switch (options.mode) {
      case 'truncate':
        return truncateWindows(runs, this.windowSpec);
      case 'chunk':
        return chunkWindows(runs, this.windowSpec);
      default:
        throw new Error(`mode must be "truncate" or "chunk", got ${JSON.stringify(options.mode)}`);
    }
  }

  /** Words currently in the BPE cache. */
  get cacheSize(): number {
    return this.bpe.cacheSize;
  }

  clearCache(): void {
    this.bpe.clearCache();
  }
}
