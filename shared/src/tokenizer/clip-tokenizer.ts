// The CLIP tokenizer Stable Diffusion uses: built from a model's tokenizer files (text passed in by the caller, so it
// runs in workerd and Node) or from their compiled form, it turns a prompt into 77-token windows with per-token weights.
import { errorMessage } from '../error-message.ts';
import { isBreak, parsePromptWeights } from '../prompt-weights.ts';
import { BpeModel, compileBpe, parseMerges, parseVocab } from './bpe-model.ts';
import { type CompiledHeader, decodeCompiled, encodeCompiled } from './compiled-tokenizer.ts';
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
    throw new Error(`${field} must be JSON, got a parse error: ${errorMessage(err)}`);
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
  private readonly header: CompiledHeader;
  private readonly windowSpec: WindowSpec;

  private constructor(bpe: BpeModel, header: CompiledHeader) {
    this.bpe = bpe;
    this.header = header;
    this.bosId = header.bosId;
    this.eosId = header.eosId;
    this.padId = header.padId;
    this.unkId = header.unkId;
    this.modelMaxLength = header.modelMaxLength;
    this.vocabSize = header.vocabSize;
    const comma = bpe.encodeWord(',');
    this.windowSpec = {
      bosId: header.bosId,
      eosId: header.eosId,
      padId: header.padId,
      modelMaxLength: header.modelMaxLength,
      commaId: comma.length === 1 ? comma[0] : -1,
    };
  }

  private static fromParts(header: CompiledHeader, tables: BpeModel['tables']): ClipTokenizer {
    const bpe = new BpeModel(tables, { unkId: header.unkId, specialWords: new Map(header.specialWords) });
    return new ClipTokenizer(bpe, header);
  }

  /**
   * Builds a tokenizer from its compiled form (compile()'s output): no JSON of the vocabulary to parse, so it loads in
   * about a millisecond. Throws CompiledTokenizerError when the bytes are another format version or damaged.
   */
  static fromCompiled(bytes: Uint8Array): ClipTokenizer {
    const { header, tables } = decodeCompiled(bytes);
    return ClipTokenizer.fromParts(header, tables);
  }

  /** The compiled form of this tokenizer; fromCompiled() of it tokenizes exactly as this one does. */
  compile(): Uint8Array {
    return encodeCompiled({ header: this.header, tables: this.bpe.tables });
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

    const tables = compileBpe(vocab, merges);
    const specialWords = new Map<string, number>([
      [DEFAULT_BOS, vocab.get(DEFAULT_BOS) ?? bosId],
      [DEFAULT_EOS, vocab.get(DEFAULT_EOS) ?? eosId],
      [bosToken, bosId],
      [eosToken, eosId],
    ]);
    return ClipTokenizer.fromParts(
      {
        bosId,
        eosId,
        padId,
        unkId,
        modelMaxLength,
        vocabSize: tables.vocabEnd,
        specialWords: [...specialWords],
        vocabEnd: tables.vocabEnd,
        mergeCount: tables.merges.length / 3,
      },
      tables,
    );
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
