// Splits normalized text into CLIP words with the CLIP pattern; each word is BPE-encoded on its own.
import { REGEX_WHITESPACE } from './normalizer.ts';

// CLIP: <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+ (IGNORECASE).
// The `u` flag makes it walk code points; `i` keeps the IGNORECASE quirk ("'ſ" matches "'s").
const CLIP_WORD = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${REGEX_WHITESPACE}\\p{L}\\p{N}]+`,
  'giu',
);

/** The words of already-normalized text, in order (whitespace between them is dropped). */
export function splitClipWords(normalized: string): string[] {
  // U+0345 (combining ypogegrammeni) case-folds to a letter: Python's regex IGNORECASE then matches it
  // with no alternative and skips it like a space, while JS /iu counts it as a letter. It is the only
  // code point where the two engines disagree (checked over all of Unicode), so it becomes a space.
  const text = normalized.includes('\u0345') ? normalized.replaceAll('\u0345', ' ') : normalized;
  return text.match(CLIP_WORD) ?? [];
}
