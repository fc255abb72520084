// `npm run gallery`: draws the README's gallery (prompt -> image) with the embedded model and the model card's sample
// grid (rows of prompts x seeds), so both always show what the shipped weights really do. Rewrites the README
// section between the gallery markers; images go to docs/gallery/ and the model folder.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp, { type OverlayOptions } from 'sharp';
import { DEFAULT_MODEL_DIR, ensureDefaultModel } from '../gpu-runner/src/default-model/write-model.ts';
import { encodeImage } from '../gpu-runner/src/image/image-codec.ts';
import { StableDiffusionPipeline } from '../gpu-runner/src/pipeline/pipeline.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const GALLERY_DIR = join(ROOT, 'docs', 'gallery');
const README = join(ROOT, 'README.md');

/** The README's prompts: every shape, most colours, every kind of position, both sizes, several phrasings. */
export const GALLERY_PROMPTS = [
  'a red circle on a blue background',
  'a small yellow triangle in the bottom right on a purple background',
  'black background, big white square, left',
  'a large green circle in the top left on a pink background',
  'a brown square at the top on a yellow background',
  'blue background, small orange circle, centre',
  'a white background with a black triangle on the right',
  'a big purple square in the bottom left corner on a green background',
  // Held out of training: the model never saw a green triangle.
  'a large green triangle in the centre on a white background',
];
const SEED = 7;
const GRID_SEEDS = [1, 2, 3, 4, 5, 6];
const SCALE = 2; // 64 px is small on a page; nearest-neighbour keeps the pixels honest

async function upscalePng(rgb: Uint8Array, size: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
    .resize(size * SCALE, size * SCALE, { kernel: 'nearest' })
    .png()
    .toBuffer();
}

/** A markdown table with padded columns, as the formatter (biome) writes it, so the README stays lint-clean. */
function markdownTable(header: [string, string], rows: [string, string][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, 3, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => `| ${cells.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

async function main(): Promise<void> {
  const pipe = await StableDiffusionPipeline.load(await ensureDefaultModel(), { intraOpNumThreads: 2 });
  const size = pipe.nativeSize;
  const base = { width: size, height: size, steps: 20, guidanceScale: 7.5 }; // the CLI's defaults
  try {
    mkdirSync(GALLERY_DIR, { recursive: true });
    const rows: [string, string][] = [];
    for (const [i, prompt] of GALLERY_PROMPTS.entries()) {
      const result = await pipe.generate({ ...base, prompt, seed: SEED });
      const name = `${String(i + 1).padStart(2, '0')}.png`;
      writeFileSync(join(GALLERY_DIR, name), await upscalePng(result.images[0].rgb, size));
      rows.push([`\`${prompt}\``, `<img src="docs/gallery/${name}" width="${size * SCALE}" alt="${prompt}">`]);
    }
    const section = [
      '<!-- gallery:start -->',
      `What the embedded model draws (\`npm run -s generate -- --prompt "..." --seed ${SEED}\`, ${size}x${size}, guidance 7.5;`,
      'shown 2x). Made by `npm run gallery`; the last prompt names a pair held out of training.',
      '',
      ...markdownTable(['prompt', 'image'], rows),
      '<!-- gallery:end -->',
    ].join('\n');
    const readme = readFileSync(README, 'utf8');
    const marked = /<!-- gallery:start -->[\s\S]*?<!-- gallery:end -->/;
    if (!marked.test(readme)) throw new Error('README.md has no <!-- gallery:start --> ... <!-- gallery:end --> section');
    writeFileSync(README, readme.replace(marked, section));

    // The model card's grid: one row per prompt, one column per seed, 1 px gaps.
    const cell = size + 1;
    const tiles: OverlayOptions[] = [];
    for (const [r, prompt] of GALLERY_PROMPTS.entries()) {
      const result = await pipe.generate({ ...base, prompt, seed: GRID_SEEDS[0], numOutputs: GRID_SEEDS.length });
      for (const [c, image] of result.images.entries()) {
        tiles.push({ input: Buffer.from(await encodeImage(image.rgb, size, size, 'png', 100)), left: c * cell, top: r * cell });
      }
    }
    const grid = await sharp({
      create: {
        width: GRID_SEEDS.length * cell - 1,
        height: GALLERY_PROMPTS.length * cell - 1,
        channels: 3,
        background: '#ffffff',
      },
    })
      .composite(tiles)
      .png()
      .toBuffer();
    const gridPath = join(DEFAULT_MODEL_DIR, 'sample-grid.png');
    writeFileSync(
      gridPath,
      await sharp(grid)
        .resize({ width: (GRID_SEEDS.length * cell - 1) * SCALE, kernel: 'nearest' })
        .png()
        .toBuffer(),
    );
    process.stdout.write(
      `wrote ${GALLERY_PROMPTS.length} gallery images to ${GALLERY_DIR}, the README section and ${gridPath}\n`,
    );
  } finally {
    await pipe.release();
  }
}

await main();
