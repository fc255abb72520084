// Builds the shared CLIP tokenizer from a model's tokenizer/ files, and the narrow interface the pipeline uses.
import { errorMessage } from '@sd/shared/error-message';
import { ClipTokenizer, type PromptWindows, type TokenizePromptOptions } from '@sd/shared/tokenizer/index';
import { ModelLoadError, type TokenizerFiles } from '../model/model-dir.ts';

export interface PromptTokenizer {
  /** Largest token id + 1: ids given by a caller must stay below it (the text encoder's Gather would fail). */
  readonly vocabSize: number;
  /** Window length, BOS and EOS included (77 for SD). */
  readonly modelMaxLength: number;
  tokenizePrompt(prompt: string, options: TokenizePromptOptions): PromptWindows;
}

export function loadTokenizer(files: TokenizerFiles, modelDir: string): PromptTokenizer {
  try {
    return ClipTokenizer.fromFiles(files);
  } catch (err) {
    throw new ModelLoadError(`${modelDir}/tokenizer`, `cannot build the CLIP tokenizer: ${errorMessage(err)}`);
  }
}
