// Public entry of the CLIP tokenizer: the tokenizer class, its option/result types and the prompt-weight parser.

export {
  isBreak,
  type PromptBreak,
  type PromptSegment,
  parsePromptWeights,
  type WeightedText,
} from '../prompt-weights.ts';
export {
  ClipTokenizer,
  type ClipTokenizerFiles,
  type LongPromptMode,
  type PromptWindows,
  type TokenizePromptOptions,
} from './clip-tokenizer.ts';
export { CompiledTokenizerError, FORMAT_VERSION as COMPILED_TOKENIZER_VERSION } from './compiled-tokenizer.ts';
export { htmlUnescape } from './html-unescape.ts';
export { normalizeClipText } from './normalizer.ts';
export { COMMA_BACKTRACK } from './prompt-windows.ts';
