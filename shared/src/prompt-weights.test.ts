import { describe, expect, it } from 'vitest';
import { isBreak, type PromptSegment, parsePromptWeights } from './prompt-weights.ts';

/** Segments in A1111's own notation: [text, weight], with ["BREAK", -1] for a break. */
function a1111(prompt: string): Array<[string, number]> {
  return parsePromptWeights(prompt).map((s: PromptSegment) => (isBreak(s) ? ['BREAK', -1] : [s.text, s.weight]));
}

// Expected values were produced by running AUTOMATIC1111's parse_prompt_attention (modules/prompt_parser.py)
// on the same inputs under Python 3.11; weights are compared exactly (same float operations in the same order).
describe('parsePromptWeights (AUTOMATIC1111 attention syntax)', () => {
  it.each<[string, Array<[string, number]>]>([
    ['normal text', [['normal text', 1]]],
    [
      'an (important) word',
      [
        ['an ', 1],
        ['important', 1.1],
        [' word', 1],
      ],
    ],
    [
      'a (((very))) important word',
      [
        ['a ', 1],
        ['very', 1.3310000000000004],
        [' important word', 1],
      ],
    ],
    [
      'an [unimportant] word',
      [
        ['an ', 1],
        ['unimportant', 0.9090909090909091],
        [' word', 1],
      ],
    ],
    [
      'a (word:1.5) here',
      [
        ['a ', 1],
        ['word', 1.5],
        [' here', 1],
      ],
    ],
    [
      'a (word: 1.5 ) here',
      [
        ['a ', 1],
        ['word', 1.5],
        [' here', 1],
      ],
    ],
    ['\\(literal\\)', [['(literal)', 1]]],
    ['\\[literal\\]', [['[literal]', 1]]],
    ['a \\\\ backslash', [['a \\ backslash', 1]]],
    ['a \\x lone backslash', [['a x lone backslash', 1]]],
    [
      '(a [b] c)',
      [
        ['a ', 1.1],
        ['b', 1],
        [' c', 1.1],
      ],
    ],
    [
      '((a:1.5) b)',
      [
        ['a', 1.6500000000000001],
        [' b', 1.1],
      ],
    ],
    [
      '((a) (b))',
      [
        ['a', 1.2100000000000002],
        [' ', 1.1],
        ['b', 1.2100000000000002],
      ],
    ],
    ['(a:1.2:1.3)', [['a:1.2', 1.3]]],
    ['[a:1.2]', [['a:1.2', 0.9090909090909091]]],
    ['(a:-0.5)', [['a', -0.5]]],
    ['(a:+2)', [['a', 2]]],
    ['(a:.5)', [['a', 0.5]]],
    ['(a:1.)', [['a', 1]]],
    ['[(a)]', [['a', 1]]],
    [
      'a (b:1.2) c (d:1.2)',
      [
        ['a ', 1],
        ['b', 1.2],
        [' c ', 1],
        ['d', 1.2],
      ],
    ],
    [
      '(masterpiece:1.2), (best quality), [blurry], 1girl, \\(artist\\)',
      [
        ['masterpiece', 1.2],
        [', ', 1],
        ['best quality', 1.1],
        [', ', 1],
        ['blurry', 0.9090909090909091],
        [', 1girl, (artist)', 1],
      ],
    ],
  ])('reads %j as A1111 does', (prompt, expected) => {
    expect(a1111(prompt)).toEqual(expected);
  });

  it.each<[string, Array<[string, number]>]>([
    ['(unbalanced', [['unbalanced', 1.1]]],
    ['[unbalanced', [['unbalanced', 0.9090909090909091]]],
    ['unbalanced)', [['unbalanced)', 1]]],
    ['unbalanced]', [['unbalanced]', 1]]],
    ['a:1.2)', [['a:1.2)', 1]]],
    ['((', [['', 1]]],
    ['))((', [['))', 1]]],
    ['', [['', 1]]],
  ])('reads malformed %j without throwing, as A1111 does', (prompt, expected) => {
    expect(a1111(prompt)).toEqual(expected);
  });

  it.each<[string, Array<[string, number]>]>([
    [
      'cat BREAK dog',
      [
        ['cat', 1],
        ['BREAK', -1],
        ['dog', 1],
      ],
    ],
    [
      'cat BREAK',
      [
        ['cat', 1],
        ['BREAK', -1],
        ['', 1],
      ],
    ],
    [
      'BREAK',
      [
        ['', 1],
        ['BREAK', -1],
        ['', 1],
      ],
    ],
    [
      'a, b BREAK c, d',
      [
        ['a, b', 1],
        ['BREAK', -1],
        ['c, d', 1],
      ],
    ],
    [
      'multi\nline BREAK\ttabs',
      [
        ['multi\nline', 1],
        ['BREAK', -1],
        ['tabs', 1],
      ],
    ],
    ['catBREAK dog', [['catBREAK dog', 1]]],
    ['cat BREAKdog', [['cat BREAKdog', 1]]],
    ['cat break dog', [['cat break dog', 1]]],
    ['éBREAK dog', [['éBREAK dog', 1]]],
  ])('splits on BREAK only as an upper-case whole word: %j', (prompt, expected) => {
    expect(a1111(prompt)).toEqual(expected);
  });

  it('keeps BREAK a break inside brackets (A1111 would weight the word "BREAK" by -1.1)', () => {
    expect(a1111('(a BREAK b)')).toEqual([
      ['a', 1.1],
      ['BREAK', -1],
      ['b', 1.1],
    ]);
  });

  it('keeps a non-numeric weight as literal text (A1111 raises ValueError)', () => {
    expect(a1111('(cat:1.2.3)')).toEqual([['cat:1.2.3)', 1.1]]);
  });

  it('never throws on random bracket soup', () => {
    const alphabet = ['(', ')', '[', ']', ':', '1.5', '\\', 'BREAK', ' ', 'cat', '😀', '.', '-'];
    let seed = 7;
    for (let n = 0; n < 2000; n++) {
      let s = '';
      for (let k = 0; k < 12; k++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        s += alphabet[seed % alphabet.length];
      }
      const segments = parsePromptWeights(s);
      expect(segments.length).toBeGreaterThan(0);
      for (const seg of segments) if (!isBreak(seg)) expect(Number.isFinite(seg.weight)).toBe(true);
    }
  });
});
