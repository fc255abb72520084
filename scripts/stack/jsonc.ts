// Reads JSON with comments and trailing commas (wrangler.jsonc) without importing wrangler: wrangler installs SIGINT and
// SIGTERM handlers that call process.exit() on import, which would cut a Ctrl-C'd `npm start` short of its clean-up.

/** JSONC text -> value: `//` and `/* *\/` comments outside strings are dropped, as are commas before `]` or `}`. */
export function parseJsonc(text: string): unknown {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      // A string, copied whole (escapes included), so a "//" inside a URL stays.
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (ch === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw new SyntaxError('unterminated /* comment');
      i = end + 2;
    } else {
      out += ch;
      i++;
    }
  }
  return JSON.parse(out.replace(/,(\s*[\]}])/g, '$1'));
}
