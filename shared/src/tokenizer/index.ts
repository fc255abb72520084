// Public entry of the CLIP tokenizer: the tokenizer class, its option/result types and the prompt-weight parser.
export {
  ClipTokenizer,
  type ClipTokenizerFiles,
  type LongPromptMode,
  type PromptWindows,
  type TokenizePromptOptions,
} from './clip-tokenizer.ts';
export { COMMA_BACKTRACK } from './prompt-windows.ts';
export { normalizeClipText } from './normalizer.ts';
export { htmlUnescape } from './html-unescape.ts';
export {
  isBreak,
  parsePromptWeights,
  type PromptBreak,
  type PromptSegment,
  type WeightedText,
} from '../prompt-weights.ts';
