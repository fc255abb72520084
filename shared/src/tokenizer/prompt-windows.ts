// Lays weighted BPE tokens out in model windows: `truncate` (diffusers: one window, the rest dropped) or
// `chunk` (AUTOMATIC1111: 75-token chunks, each its own window, comma backtracking, BREAK).

export type LongPromptMode = 'truncate' | 'chunk';

/** The tokens of one prompt segment, or a forced chunk break. */
export type TokenRun = { ids: readonly number[]; weight: number } | 'break';

export interface WindowSpec {
  bosId: number;
  eosId: number;
  padId: number;
  /** Window length including BOS and EOS (77 for CLIP). */
  modelMaxLength: number;
  /** Id of the `,` word, for chunk backtracking; -1 disables backtracking. */
  commaId: number;
}

export interface PromptWindows {
  ids: number[][];
  weights: number[][];
  /** BPE tokens of the whole prompt, before truncation, without BOS/EOS. */
  tokenCount: number;
  truncated: boolean;
}

/** A1111's opts.comma_padding_backtrack default: a full chunk may end after a comma this close to its end. */
export const COMMA_BACKTRACK = 20;

function wrap(spec: WindowSpec, ids: number[], weights: number[]): { ids: number[]; weights: number[] } {
  const n = spec.modelMaxLength;
  const outIds = new Array<number>(n);
  const outWeights = new Array<number>(n);
  outIds[0] = spec.bosId;
  outWeights[0] = 1;
  for (let i = 0; i < ids.length; i++) {
    outIds[i + 1] = ids[i];
    outWeights[i + 1] = weights[i];
  }
  outIds[ids.length + 1] = spec.eosId;
  outWeights[ids.length + 1] = 1;
  for (let i = ids.length + 2; i < n; i++) {
    outIds[i] = spec.padId;
    outWeights[i] = 1;
  }
  return { ids: outIds, weights: outWeights };
}

/** diffusers: [BOS] + the first modelMaxLength-2 tokens + [EOS], padded; BREAK markers are ignored. */
export function truncateWindows(runs: readonly TokenRun[], spec: WindowSpec): PromptWindows {
  const room = spec.modelMaxLength - 2;
  const ids: number[] = [];
  const weights: number[] = [];
  let tokenCount = 0;
  for (const run of runs) {
    if (run === 'break') continue;
    tokenCount += run.ids.length;
    for (let i = 0; i < run.ids.length && ids.length < room; i++) {
      ids.push(run.ids[i]);
      weights.push(run.weight);
    }
  }
  const window = wrap(spec, ids, weights);
  return { ids: [window.ids], weights: [window.weights], tokenCount, truncated: tokenCount > room };
}

/**
 * AUTOMATIC1111 (sd_hijack_clip.tokenize_line): fill chunks of modelMaxLength-2 tokens; when a chunk is
 * full and a comma sits within its last COMMA_BACKTRACK tokens, the tokens after that comma move to the
 * next chunk. BREAK closes the current chunk. Each chunk becomes [BOS] + chunk + [EOS] + padding; an
 * empty prompt still gives one chunk.
 */
export function chunkWindows(runs: readonly TokenRun[], spec: WindowSpec): PromptWindows {
  const size = spec.modelMaxLength - 2;
  const out: PromptWindows = { ids: [], weights: [], tokenCount: 0, truncated: false };
  let ids: number[] = [];
  let weights: number[] = [];
  let lastComma = -1;
  const nextChunk = (): void => {
    const window = wrap(spec, ids, weights);
    out.ids.push(window.ids);
    out.weights.push(window.weights);
    ids = [];
    weights = [];
    lastComma = -1;
  };

  for (const run of runs) {
    if (run === 'break') {
      nextChunk();
      continue;
    }
    out.tokenCount += run.ids.length;
    for (const id of run.ids) {
      if (id === spec.commaId) {
        lastComma = ids.length;
      } else if (ids.length === size && lastComma !== -1 && ids.length - lastComma <= COMMA_BACKTRACK) {
        // Carry the words after the comma over, so a phrase is not cut in the middle.
        const carriedIds = ids.slice(lastComma + 1);
        const carriedWeights = weights.slice(lastComma + 1);
        ids = ids.slice(0, lastComma + 1);
        weights = weights.slice(0, lastComma + 1);
        nextChunk();
        ids = carriedIds;
        weights = carriedWeights;
      }
      if (ids.length === size) nextChunk();
      ids.push(id);
      weights.push(run.weight);
    }
  }
  if (ids.length > 0 || out.ids.length === 0) nextChunk();
  return out;
}
