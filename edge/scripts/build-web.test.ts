import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GENERATED_MODULE, generatedModuleText } from './build-web.ts';

describe('the browser bundles the edge serves', () => {
  it('src/embed/generated/web-bundles.ts is what edge/web bundles to now (else: npm run build:web -w edge)', async () => {
    const fresh = await generatedModuleText();
    expect(readFileSync(GENERATED_MODULE, 'utf8') === fresh, 'web-bundles.ts is out of date: npm run build:web -w edge').toBe(
      true,
    );
  });

  it('are classic scripts without eval, Function, inline styles, innerHTML or another host', async () => {
    const mod = (await import(GENERATED_MODULE)) as Record<string, string>;
    const scripts = Object.entries(mod).filter(([name]) => name.endsWith('_SCRIPT'));
    expect(scripts.map(([name]) => name).sort()).toEqual(['PLAYGROUND_SCRIPT', 'SD_IMAGE_SCRIPT']);
    for (const [name, text] of scripts) {
      expect(text, name).not.toMatch(/\beval\s*\(|new Function|setTimeout\s*\(\s*['"]/);
      expect(text, name).not.toMatch(/\.innerHTML\s*=|\.style\.|setAttribute\(\s*['"]style/);
      expect(text, name).not.toMatch(/^\s*(import|export)\s/m);
      expect(text.match(/https?:\/\/[^\s'"`]+/g) ?? [], name).toEqual([]);
      expect(() => new Function(text), name).not.toThrow();
    }
  });

  it('has stylesheets that load nothing (no @import, no url())', async () => {
    const mod = (await import(GENERATED_MODULE)) as Record<string, string>;
    expect(mod.PLAYGROUND_CSS).toContain('#image-box');
    expect(mod.PLAYGROUND_CSS).not.toMatch(/@import|url\(/);
  });
});
