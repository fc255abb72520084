import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EDGE_CONFIG } from './edge-process.ts';
import { parseJsonc } from './jsonc.ts';

describe('parseJsonc', () => {
  it('drops line and block comments but keeps "//" inside strings', () => {
    expect(parseJsonc('{\n  // a comment\n  "url": "http://x/y", /* b */ "n": 1\n}')).toEqual({ url: 'http://x/y', n: 1 });
  });

  it('accepts trailing commas and escaped quotes', () => {
    expect(parseJsonc('{"a": ["q\\"//", 2,], }')).toEqual({ a: ['q"//', 2] });
  });

  it('throws on broken JSON rather than guessing', () => {
    expect(() => parseJsonc('{"a": 1 /* open')).toThrow(/unterminated/);
    expect(() => parseJsonc('{"a": }')).toThrow(SyntaxError);
  });

  it("reads the edge's wrangler.jsonc, with its MODELS var", () => {
    const config = parseJsonc(readFileSync(EDGE_CONFIG, 'utf8')) as { vars: { MODELS: string } };
    expect(JSON.parse(config.vars.MODELS)[0]).toMatchObject({ id: 'sd/embedded' });
  });
});
