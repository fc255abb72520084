// The analyzer must read clean scenes (jitter included) back exactly before it may judge a model's images.
import { describe, expect, it } from 'vitest';
import {
  COLOUR_NAMES,
  generateExample,
  POSITIONS,
  renderScene,
  SCENE_SIZE,
  type SceneSpec,
  SHAPES,
  SIZES,
} from '../../gpu-runner/src/scenes/scenes.ts';
import { analyzeScene } from './scene-analyzer.ts';

const read = (image: Uint8Array) => analyzeScene({ width: SCENE_SIZE, height: SCENE_SIZE, data: image });

describe('analyzeScene on the generator itself', () => {
  it('reads every attribute of 2000 random jittered scenes (held-out pairs included)', () => {
    const wrong: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const ex = generateExample(900_000 + i, 0, 'include');
      const r = read(ex.image);
      for (const key of ['background', 'colour', 'position', 'size', 'shape'] as const) {
        if (r[key] !== ex.spec[key]) wrong.push(`${JSON.stringify(ex.spec)} read ${key} as ${r[key]}`);
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  it('reads every shape x size x position of an un-jittered scene', () => {
    for (const shape of SHAPES)
      for (const size of SIZES)
        for (const position of POSITIONS) {
          const spec: SceneSpec = { background: 'white', colour: 'blue', shape, size, position };
          expect(read(renderScene(spec)), JSON.stringify(spec)).toMatchObject(spec);
        }
  });

  it('names every colour pair as background and object', () => {
    for (const background of COLOUR_NAMES)
      for (const colour of COLOUR_NAMES) {
        if (background === colour) continue;
        const r = read(renderScene({ background, colour, shape: 'square', size: 'large', position: 'centre' }));
        expect([r.background, r.colour]).toEqual([background, colour]);
      }
  });

  it('reports no object on a plain background', () => {
    const plain = renderScene({ background: 'green', colour: 'green', shape: 'circle', size: 'small', position: 'centre' });
    expect(read(plain)).toMatchObject({ background: 'green', colour: null, shape: null });
  });
});

/** A (2r+1)^2 box blur of an RGB scene: the soft edges a VAE decodes. */
function blur(image: Uint8Array, r: number): Uint8Array {
  const out = new Uint8Array(image.length);
  for (let y = 0; y < SCENE_SIZE; y++)
    for (let x = 0; x < SCENE_SIZE; x++)
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        let n = 0;
        for (let dy = -r; dy <= r; dy++)
          for (let dx = -r; dx <= r; dx++) {
            const xx = x + dx;
            const yy = y + dy;
            if (xx < 0 || yy < 0 || xx >= SCENE_SIZE || yy >= SCENE_SIZE) continue;
            sum += image[(yy * SCENE_SIZE + xx) * 3 + c];
            n++;
          }
        out[(y * SCENE_SIZE + x) * 3 + c] = Math.round(sum / n);
      }
  return out;
}

describe('analyzeScene on soft edges', () => {
  it('reads shape, size and area of blurred scenes: the object is cut at the edge midpoint, not grown by its halo', () => {
    for (const shape of SHAPES)
      for (const size of SIZES)
        for (const [background, colour] of [
          ['white', 'red'],
          ['black', 'yellow'],
          ['pink', 'blue'],
        ] as const) {
          const spec: SceneSpec = { background, colour, shape, size, position: 'centre' };
          const sharp = read(renderScene(spec));
          const soft = read(blur(renderScene(spec), 2));
          expect(soft, JSON.stringify(spec)).toMatchObject({ shape, size, position: 'centre' });
          expect(Math.abs(soft.area - sharp.area) / sharp.area, `${JSON.stringify(spec)} area`).toBeLessThan(0.15);
        }
  });
});
