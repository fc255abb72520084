// HTML character-reference decoding with exactly the semantics of Python's html.unescape, which is
// what CLIP's basic_clean applies (twice) before tokenizing; it never throws.
import { LEGACY_ENTITY_NAMES, NAMED_ENTITIES } from './html-entities.ts';

// Python: r'&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)' (a name may hold \r and non-ASCII).
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

// Numeric references to these code points are replaced (HTML5 table; Windows-1252 for 0x80-0x9F).
const INVALID_CHARREFS = new Map<number, string>([
  [0x00, '\ufffd'],
  [0x0d, '\r'],
  [0x80, '\u20ac'],
  [0x81, '\x81'],
  [0x82, '\u201a'],
  [0x83, '\u0192'],
  [0x84, '\u201e'],
  [0x85, '\u2026'],
  [0x86, '\u2020'],
  [0x87, '\u2021'],
  [0x88, '\u02c6'],
  [0x89, '\u2030'],
  [0x8a, '\u0160'],
  [0x8b, '\u2039'],
  [0x8c, '\u0152'],
  [0x8d, '\x8d'],
  [0x8e, '\u017d'],
  [0x8f, '\x8f'],
  [0x90, '\x90'],
  [0x91, '\u2018'],
  [0x92, '\u2019'],
  [0x93, '\u201c'],
  [0x94, '\u201d'],
  [0x95, '\u2022'],
  [0x96, '\u2013'],
  [0x97, '\u2014'],
  [0x98, '\u02dc'],
  [0x99, '\u2122'],
  [0x9a, '\u0161'],
  [0x9b, '\u203a'],
  [0x9c, '\u0153'],
  [0x9d, '\x9d'],
  [0x9e, '\u017e'],
  [0x9f, '\u0178'],
]);

/** Python drops numeric references to controls and non-characters (html._invalid_codepoints). */
function isInvalidCodePoint(cp: number): boolean {
  return (
    (cp >= 0x1 && cp <= 0x8) ||
    cp === 0xb ||
    (cp >= 0xe && cp <= 0x1f) ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0xfdd0 && cp <= 0xfdef) ||
    (cp & 0xfffe) === 0xfffe // U+xFFFE and U+xFFFF in every plane (cp <= 0x10FFFF here)
  );
}

let namedMap: Map<string, string> | undefined;
/** Built on first use; a Map, so names such as "constructor" never hit Object.prototype. */
function named(): Map<string, string> {
  if (!namedMap) {
    namedMap = new Map(Object.entries(NAMED_ENTITIES));
  }
  return namedMap;
}

function lookupName(name: string): string | undefined {
  // Python's html5 dict has "amp;" for every entity and "amp" only for the legacy ones.
  if (name.endsWith(';')) return named().get(name.slice(0, -1));
  return LEGACY_ENTITY_NAMES.has(name) ? named().get(name) : undefined;
}

function numeric(ref: string): string {
  const hex = ref[1] === 'x' || ref[1] === 'X';
  const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
  // parseInt on a 30-digit string gives a huge float, which still lands in the > 0x10FFFF branch.
  const cp = Number.parseInt(digits, hex ? 16 : 10);
  const replaced = INVALID_CHARREFS.get(cp);
  if (replaced !== undefined) return replaced;
  if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return '\ufffd';
  if (isInvalidCodePoint(cp)) return '';
  return String.fromCodePoint(cp);
}

function replaceCharref(_match: string, ref: string): string {
  if (ref[0] === '#') return numeric(ref);
  const whole = lookupName(ref);
  if (whole !== undefined) return whole;
  // The longest legacy prefix wins ("&notit;" -> "¬it;"); Python tries prefixes of 2+ code points.
  const cps = Array.from(ref);
  for (let x = cps.length - 1; x > 1; x--) {
    const prefix = cps.slice(0, x).join('');
    const text = lookupName(prefix);
    if (text !== undefined) return text + cps.slice(x).join('');
  }
  return `&${ref}`;
}

/** Python's html.unescape: named (HTML5, incl. legacy no-';' forms) and numeric references. */
export function htmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHARREF, replaceCharref);
}
