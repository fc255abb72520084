import { describe, expect, it } from 'vitest';
import { chunkWindows, truncateWindows, type WindowSpec } from './prompt-windows.ts';

const spec: WindowSpec = { bosId: 900, eosId: 901, padId: 902, modelMaxLength: 77, commaId: 5 };
const words = (n: number, from = 100): number[] => Array.from({ length: n }, (_, i) => from + i);
const body = (window: number[]): number[] => window.slice(1, window.indexOf(spec.eosId));

describe('truncateWindows (diffusers)', () => {
  it('keeps BOS + 75 tokens + EOS and reports the count before truncation', () => {
    const out = truncateWindows([{ ids: words(80), weight: 1.2 }], spec);
    expect(out.ids.length).toBe(1);
    expect(out.ids[0]).toEqual([900, ...words(75), 901]);
    expect(out.weights[0]).toEqual([1, ...Array(75).fill(1.2), 1]);
    expect(out.tokenCount).toBe(80);
    expect(out.truncated).toBe(true);
  });

  it('pads after EOS with the pad id and weight 1', () => {
    const out = truncateWindows([{ ids: [7, 8], weight: 2 }, 'break', { ids: [9], weight: 0.5 }], spec);
    expect(out.ids[0].slice(0, 6)).toEqual([900, 7, 8, 9, 901, 902]);
    expect(out.weights[0].slice(0, 6)).toEqual([1, 2, 2, 0.5, 1, 1]);
    expect(out.ids[0].length).toBe(77);
    expect(out.truncated).toBe(false);
  });
});

describe('chunkWindows (AUTOMATIC1111)', () => {
  it('gives one padded chunk for an empty prompt', () => {
    const out = chunkWindows([{ ids: [], weight: 1 }], spec);
    expect(out.ids).toEqual([[900, 901, ...Array(75).fill(902)]]);
    expect(out.tokenCount).toBe(0);
  });

  it('splits 160 comma-free tokens into 75 + 75 + 10', () => {
    const out = chunkWindows([{ ids: words(160), weight: 1 }], spec);
    expect(out.ids.map(body)).toEqual([words(75), words(75, 175), words(10, 250)]);
    expect(out.ids.every((w) => w.length === 77 && w[0] === 900)).toBe(true);
    expect(out.tokenCount).toBe(160);
    expect(out.truncated).toBe(false);
  });

  it('fills exactly 75 tokens into one chunk', () => {
    expect(chunkWindows([{ ids: words(75), weight: 1 }], spec).ids.length).toBe(1);
  });

  it('moves the words after a comma in the last 20 tokens to the next chunk', () => {
    // Comma at chunk position 60: 75 - 60 = 15 <= 20, so tokens 61.. move on.
    const ids = [...words(60), 5, ...words(30, 300)];
    const out = chunkWindows([{ ids, weight: 1.1 }], spec);
    expect(body(out.ids[0])).toEqual([...words(60), 5]);
    expect(body(out.ids[1])).toEqual(words(30, 300));
    expect(out.weights[0][62]).toBe(1);
    expect(out.weights[1].slice(1, 31)).toEqual(Array(30).fill(1.1));
  });

  it('does not backtrack to a comma more than 20 tokens before the end', () => {
    const ids = [...words(50), 5, ...words(40, 300)];
    const out = chunkWindows([{ ids, weight: 1 }], spec);
    expect(body(out.ids[0]).length).toBe(75);
  });

  it('starts a new chunk at BREAK and keeps weights aligned', () => {
    const out = chunkWindows([{ ids: [7, 8], weight: 1.5 }, 'break', { ids: [9], weight: 1 }], spec);
    expect(out.ids.map(body)).toEqual([[7, 8], [9]]);
    expect(out.weights[0].slice(0, 4)).toEqual([1, 1.5, 1.5, 1]);
  });

  it('adds no empty chunk for a trailing BREAK', () => {
    const out = chunkWindows([{ ids: [7], weight: 1 }, 'break', { ids: [], weight: 1 }], spec);
    expect(out.ids.length).toBe(1);
  });
});
