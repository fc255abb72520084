// Writes the trainer's dataset from the TypeScript scene generator (the source of truth): images, tokenized
// captions (our CLIP BPE tokenizer, so the Python side never tokenizes) and ground truth, as flat binary files.
//   tsx gpu-runner/training/write-dataset.ts --out DIR [--count 20000] [--captions 4] [--seed 1]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ClipTokenizer } from '@sd/shared/tokenizer/index';
import { buildDefaultVocabulary, tokenizerFiles } from '../src/default-model/vocabulary.ts';
import { generateExample, SCENE_SIZE } from '../src/scenes/scenes.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    count: { type: 'string', default: '20000' },
    captions: { type: 'string', default: '4' },
    seed: { type: 'string', default: '1' },
  },
});
if (!values.out) throw new Error('--out DIR is required');
const out = values.out;
const count = Number(values.count);
const perImage = Number(values.captions);
const seed = Number(values.seed);

const files = tokenizerFiles(buildDefaultVocabulary());
mkdirSync(join(out, 'tokenizer'), { recursive: true });
for (const [name, text] of Object.entries(files)) writeFileSync(join(out, 'tokenizer', name), text);
const tokenizer = ClipTokenizer.fromFiles({
  vocab: files['vocab.json'],
  merges: files['merges.txt'],
  tokenizerConfig: files['tokenizer_config.json'],
  specialTokensMap: files['special_tokens_map.json'],
});
const SEQ = tokenizer.modelMaxLength;
const tokenize = (text: string): number[] => tokenizer.tokenizePrompt(text, { mode: 'truncate', weighting: false }).ids[0];

const pixels = SCENE_SIZE * SCENE_SIZE * 3;
const images = new Uint8Array(count * pixels);
const ids = new Int32Array(count * perImage * SEQ);
const specs: unknown[] = [];
for (let i = 0; i < count; i++) {
  // Seeds are spread so dataset i of seed s never repeats another seed's example.
  const ex = generateExample(seed * 1_000_003 + i, perImage);
  images.set(ex.image, i * pixels);
  for (const [k, c] of ex.captions.entries()) ids.set(tokenize(c), (i * perImage + k) * SEQ);
  specs.push({ ...ex.spec, captions: ex.captions });
  if (i % 5000 === 0) process.stderr.write(`${i}/${count}\n`);
}
writeFileSync(join(out, 'images.u8'), images);
writeFileSync(join(out, 'captions.i32'), new Uint8Array(ids.buffer));
writeFileSync(
  join(out, 'dataset.json'),
  `${JSON.stringify({ count, captionsPerImage: perImage, sequenceLength: SEQ, imageSize: SCENE_SIZE, seed, emptyIds: tokenize(''), vocabSize: tokenizer.vocabSize, examples: specs })}\n`,
);
process.stderr.write(`wrote ${count} examples to ${out}\n`);
