// Tokenizes the prompt and the negative prompt into windows of equal count: classifier-free guidance concatenates the
// two conditionings, so the shorter side is padded with empty-prompt windows ([BOS, EOS, pad...], weights 1).
import type { TokenizedPrompt } from '@sd/shared/schemas/runner';
import type { ClipTokenizer } from '@sd/shared/tokenizer/index';

export interface PromptPair {
  prompt: TokenizedPrompt;
  negative: TokenizedPrompt;
}

export interface PromptTokenOptions {
  mode: 'truncate' | 'chunk';
  weighting: boolean;
}

export function tokenizePromptPair(
  tokenizer: ClipTokenizer,
  prompt: string,
  negativePrompt: string,
  options: PromptTokenOptions,
): PromptPair {
  const pos = tokenizer.tokenizePrompt(prompt, { mode: options.mode, weighting: options.weighting });
  const neg = tokenizer.tokenizePrompt(negativePrompt, { mode: options.mode, weighting: options.weighting });
  const windows = Math.max(pos.ids.length, neg.ids.length);
  const empty = tokenizer.tokenizePrompt('', { mode: 'truncate', weighting: false });
  const pad = (side: { ids: number[][]; weights: number[][] }): TokenizedPrompt => {
    const ids = side.ids.map((w) => [...w]);
    const weights = side.weights.map((w) => [...w]);
    while (ids.length < windows) {
      ids.push([...empty.ids[0]]);
      weights.push([...empty.weights[0]]);
    }
    return { ids, weights };
  };
  return { prompt: pad(pos), negative: pad(neg) };
}
