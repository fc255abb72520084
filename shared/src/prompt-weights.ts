// Parses AUTOMATIC1111's attention syntax ((word), [word], (word:1.3), \( escapes, BREAK) into weighted
// text segments. Written to behave like A1111's parse_prompt_attention; malformed input never throws.

/** A run of prompt text and the weight its tokens get. */
export interface WeightedText {
  text: string;
  weight: number;
}

/** `BREAK` in a prompt: the tokenizer starts a new 75-token chunk here. */
export interface PromptBreak {
  break: true;
}

export type PromptSegment = WeightedText | PromptBreak;

export const ROUND_BRACKET_MULTIPLIER = 1.1;
export const SQUARE_BRACKET_MULTIPLIER = 1 / 1.1;

export function isBreak(segment: PromptSegment): segment is PromptBreak {
  return 'break' in segment;
}

// Python `re` \s (str.isspace), used by A1111's patterns: JS \s minus U+FEFF, plus U+001C..U+001F and U+0085.
const PY_SPACE = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

// One token of the syntax per match, in A1111's order: escapes, a lone backslash, openers, ":weight)",
// closers, plain text, a lone colon. (\d is ASCII here; A1111's Python \d also takes other scripts' digits.)
const ATTENTION_TOKEN = new RegExp(
  `\\\\\\(|\\\\\\)|\\\\\\[|\\\\\\]|\\\\\\\\|\\\\|\\(|\\[|:[${PY_SPACE}]*([+-]?[.0-9]+)[${PY_SPACE}]*\\)|\\)|\\]|[^\\\\()\\[\\]:]+|:`,
  'gu',
);
// BREAK as a whole word (Python's Unicode \b), swallowing the whitespace around it.
const BREAK_WORD = new RegExp(`[${PY_SPACE}]*(?<![\\p{L}\\p{N}_])BREAK(?![\\p{L}\\p{N}_])[${PY_SPACE}]*`, 'u');
const NEEDS_PARSING = /[\\()[\]:]|BREAK/;

/**
 * Splits a prompt into weighted segments and BREAK markers.
 *
 * `(x)` multiplies by 1.1, `[x]` divides by 1.1, `(x:w)` multiplies by w; brackets nest and multiply.
 * `\(`, `\)`, `\[`, `\]`, `\\` are literal characters; a lone `\` is dropped. A closer with no opener is
 * literal text; an opener never closed applies its factor to the rest of the prompt. Adjacent runs of
 * equal weight are merged. Deviations from A1111, both where A1111 fails: a weight that is not a number
 * (`(x:1.2.3)`) is kept as literal text instead of raising, and BREAK inside brackets still breaks
 * (A1111 multiplies its internal -1 marker and then tokenizes the word "BREAK" with a negative weight).
 */
export function parsePromptWeights(prompt: string): PromptSegment[] {
  if (!NEEDS_PARSING.test(prompt)) return [{ text: prompt, weight: 1 }];

  const res: Array<{ text: string; weight: number; isBreak: boolean }> = [];
  const roundOpen: number[] = [];
  const squareOpen: number[] = [];
  const multiplyFrom = (start: number, factor: number): void => {
    for (let p = start; p < res.length; p++) if (!res[p].isBreak) res[p].weight *= factor;
  };
  const pushText = (text: string): void => {
    const parts = text.includes('BREAK') ? text.split(BREAK_WORD) : [text];
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) res.push({ text: 'BREAK', weight: 1, isBreak: true });
      res.push({ text: parts[i], weight: 1, isBreak: false });
    }
  };

  for (const m of prompt.matchAll(ATTENTION_TOKEN)) {
    const token = m[0];
    const weightText = m[1];
    if (token.startsWith('\\')) {
      res.push({ text: token.slice(1), weight: 1, isBreak: false });
    } else if (token === '(') {
      roundOpen.push(res.length);
    } else if (token === '[') {
      squareOpen.push(res.length);
    } else if (weightText !== undefined && roundOpen.length > 0 && Number.isFinite(Number(weightText))) {
      multiplyFrom(roundOpen.pop() as number, Number(weightText));
    } else if (token === ')' && roundOpen.length > 0) {
      multiplyFrom(roundOpen.pop() as number, ROUND_BRACKET_MULTIPLIER);
    } else if (token === ']' && squareOpen.length > 0) {
      multiplyFrom(squareOpen.pop() as number, SQUARE_BRACKET_MULTIPLIER);
    } else {
      pushText(token);
    }
  }
  for (const pos of roundOpen) multiplyFrom(pos, ROUND_BRACKET_MULTIPLIER);
  for (const pos of squareOpen) multiplyFrom(pos, SQUARE_BRACKET_MULTIPLIER);

  if (res.length === 0) return [{ text: '', weight: 1 }];

  // Merge neighbouring runs of identical weight (exact float equality, as A1111 does).
  const out: PromptSegment[] = [];
  for (const r of res) {
    const last = out[out.length - 1];
    if (r.isBreak) out.push({ break: true });
    else if (last !== undefined && !isBreak(last) && last.weight === r.weight) last.text += r.text;
    else out.push({ text: r.text, weight: r.weight });
  }
  return out;
}
