// The GPT-2/CLIP byte-to-unicode table: every UTF-8 byte maps to one printable character, so BPE
// symbols are strings and the vocabulary is plain JSON.

function buildByteToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table: string[] = new Array(256);
  for (const b of printable) table[b] = String.fromCharCode(b);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCharCode(256 + next++);
  }
  return table;
}

/** byte (0..255) -> its printable stand-in character. */
export const BYTE_TO_UNICODE: readonly string[] = buildByteToUnicode();

const utf8 = new TextEncoder();

/** The word's UTF-8 bytes, each replaced by its stand-in character (one symbol per byte). */
export function byteEncodeWord(word: string): string[] {
  const bytes = utf8.encode(word);
  const symbols = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) symbols[i] = BYTE_TO_UNICODE[bytes[i]];
  return symbols;
}
