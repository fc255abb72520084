// Tokenizes the prompt and the negative prompt into windows of equal count: classifier-free guidance concatenates the
// two conditionings, so the shorter side is padded with empty-prompt windows ([BOS, EOS, pad...], weights 1).
import { MAX_TOKEN_WEIGHT, type TokenizedPrompt } from '@sd/shared/schemas/runner';
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

/**
 * A weight the runner would refuse ((cat:1000), or many nested parentheses), named by the prompt it came from, so
 * the caller gets a 422 now instead of a failed prediction later. Null when every weight is in range.
 */
export function promptWeightProblem(pair: PromptPair): { field: 'prompt' | 'negative_prompt'; message: string } | null {
  for (const [field, side] of [
    ['prompt', pair.prompt],
    ['negative_prompt', pair.negative],
  ] as const) {
    for (const window of side.weights) {
      const bad = window.find((w) => !(Math.abs(w) <= MAX_TOKEN_WEIGHT));
      if (bad !== undefined) {
        return { field, message: `${field} weights must be between -${MAX_TOKEN_WEIGHT} and ${MAX_TOKEN_WEIGHT}, got ${bad}` };
      }
    }
  }
  return null;
}
