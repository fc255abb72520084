// The playground's HTML as a pure function: each model's size rules travel on its option, and the first model's are
// on the width and height inputs before any script runs.
import { describe, expect, it } from 'vitest';
import { playgroundHtml } from './playground-page.ts';

const small = { ref: 'sd/embedded:embedded-v5', nativeSide: 64, sideMultiple: 16, minSide: 64, maxSide: 256 };
const large = { ref: 'acme/sd15:v1', nativeSide: 512, sideMultiple: 8, minSide: 64, maxSide: 2048 };

describe('playgroundHtml', () => {
  it("puts each model's size rules on its option and the first model's on the width and height inputs", () => {
    const html = playgroundHtml([small, large]);
    expect(html).toContain(
      '<option value="sd/embedded:embedded-v5" data-native-side="64" data-side-multiple="16" data-min-side="64" data-max-side="256">',
    );
    expect(html).toContain(
      '<option value="acme/sd15:v1" data-native-side="512" data-side-multiple="8" data-min-side="64" data-max-side="2048">',
    );
    for (const id of ['width', 'height'])
      expect(html).toContain(
        `<input id="${id}" type="number" inputmode="decimal" min="64" max="256" step="16" placeholder="64 (native)">`,
      );
    const other = playgroundHtml([large, small]);
    expect(other).toContain(
      '<input id="width" type="number" inputmode="decimal" min="64" max="2048" step="8" placeholder="512 (native)">',
    );
  });

  it('escapes a model reference', () => {
    const html = playgroundHtml([{ ...large, ref: 'a/b:"><script>' }]);
    expect(html).toContain('value="a/b:&quot;&gt;&lt;script&gt;"');
    expect(html).not.toContain('"><script>');
  });
});
