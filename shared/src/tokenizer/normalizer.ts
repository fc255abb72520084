// CLIP's text clean-up before splitting: basic_clean (HTML-unescape twice, strip) and whitespace_clean
// (collapse whitespace, strip), then Python's full lower(). ftfy.fix_text is the identity, as in the goldens.
import { htmlUnescape } from './html-unescape.ts';

// `\s` of Python's `regex` module (Unicode White_Space): unlike JS `\s` it has U+0085 and not U+FEFF.
export const REGEX_WHITESPACE = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITESPACE_RUN = new RegExp(`[${REGEX_WHITESPACE}]+`, 'gu');
// Python's str.strip() uses str.isspace(), which also counts U+001C..U+001F.
const STRIP_EDGES = new RegExp(`^[${REGEX_WHITESPACE}\\x1c-\\x1f]+|[${REGEX_WHITESPACE}\\x1c-\\x1f]+$`, 'gu');

/** The text CLIP's SimpleTokenizer actually splits: whitespace_clean(basic_clean(text)).lower(). */
export function normalizeClipText(text: string): string {
  let t = htmlUnescape(htmlUnescape(text)).replace(STRIP_EDGES, '');
  t = t.replace(WHITESPACE_RUN, ' ').replace(STRIP_EDGES, '');
  // JS toLowerCase is Python's lower(): full case mapping (İ -> i̇) and the Greek final-sigma rule.
  return t.toLowerCase();
}
