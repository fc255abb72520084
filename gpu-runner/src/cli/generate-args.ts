// Parses and validates `npm run generate` arguments; every violation is one line naming the flag, value and limit.

import { parseArgs } from 'node:util';
import { errorMessage } from '@sd/shared/error-message';
import type { OutputFormat } from '../image/image-codec.ts';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface GenerateArgs {
  model?: string;
  prompt: string;
  negativePrompt: string;
  /** Absent: the model's native size. */
  width?: number;
  height?: number;
  steps: number;
  guidance: number;
  /** Absent: the model's own default. */
  guidanceEnd?: number;
  scheduler?: string;
  seed?: number;
  numOutputs: number;
  image?: string;
  mask?: string;
  strength?: number;
  initLatents?: string;
  format: OutputFormat;
  quality: number;
  out: string;
  rawOut?: string;
  threads?: number;
}

/** Every flag: its value, its default (what an absent flag means) and what it does. --help is made from this table. */
export const FLAGS = [
  { flag: 'prompt', value: 'TEXT', default: 'required', help: 'what to draw' },
  {
    flag: 'out',
    value: 'FILE',
    default: 'required',
    help: 'where to write the image; with --num-outputs N: FILE-0, FILE-1, ...',
  },
  { flag: 'negative-prompt', value: 'TEXT', default: '""', help: 'what to steer away from' },
  { flag: 'model', value: 'DIR', default: 'the embedded model', help: 'a diffusers ONNX export' },
  {
    flag: 'width',
    value: 'W',
    default: "the image's (img2img), else the model's native size",
    help: 'a multiple the U-Net takes (16 embedded, 64 SD 1.x), 64..2048',
  },
  {
    flag: 'height',
    value: 'H',
    default: "the image's (img2img), else the model's native size",
    help: 'a multiple the U-Net takes (16 embedded, 64 SD 1.x), 64..2048',
  },
  { flag: 'steps', value: 'N', default: '20', help: 'denoising steps, 1..150' },
  { flag: 'guidance', value: 'G', default: '7.5', help: 'classifier-free guidance scale, 0..30 (<= 1: no uncond pass)' },
  {
    flag: 'guidance-end',
    value: 'X',
    default: "the model's own (1 unless it ships another)",
    help: 'fraction of the steps, from the first, run with guidance, 0..1',
  },
  { flag: 'scheduler', value: 'NAME', default: "the model's own", help: 'ddim, pndm, euler, euler_a, dpmpp_2m, ... or an alias' },
  { flag: 'seed', value: 'S', default: 'random, printed', help: '0..4294967295; image i uses seed + i' },
  { flag: 'num-outputs', value: 'N', default: '1', help: 'images to make, 1..4' },
  { flag: 'image', value: 'FILE', default: 'none: txt2img', help: 'img2img source: PNG, JPEG or WebP' },
  {
    flag: 'strength',
    value: 'X',
    default: '0.8; 1 with --mask',
    help: 'how much of the image is redrawn, 0..1 (needs --image)',
  },
  { flag: 'mask', value: 'FILE', default: 'none', help: 'inpainting mask, white = repaint (needs --image)' },
  { flag: 'init-latents', value: 'FILE', default: 'seeded noise', help: 'float32 little-endian [N, C, H/8, W/8] start noise' },
  {
    flag: 'format',
    value: 'png|webp|jpeg',
    default: "--out's extension, else png",
    help: "image format; one that contradicts --out's extension is refused",
  },
  { flag: 'quality', value: 'Q', default: '80', help: 'webp/jpeg quality, 1..100' },
  { flag: 'threads', value: 'N', default: "onnxruntime's choice", help: 'intra-op threads, 1..256' },
  { flag: 'raw-out', value: 'FILE', default: 'none', help: 'also write the decoder output as float32 NCHW' },
  { flag: 'help', value: '', default: '', help: 'this list' },
] as const;

export const USAGE = `usage: npm run -s generate -- --prompt TEXT --out FILE [flags]\n\n${FLAGS.map((f) => {
  const name = `  --${f.flag}${f.value ? ` ${f.value}` : ''}`;
  const fallback = f.default === 'required' ? ' (required)' : f.default ? ` (default: ${f.default})` : '';
  return `${name.padEnd(30)}${f.help}${fallback}`;
}).join('\n')}`;

const EXTENSION_FORMATS: Record<string, OutputFormat> = { png: 'png', webp: 'webp', jpg: 'jpeg', jpeg: 'jpeg' };

/**
 * The output format: --format, or --out's extension. Both given and disagreeing is refused rather than writing, say,
 * WebP bytes into x.png, which viewers then misread.
 */
function outputFormat(format: string | undefined, out: string): OutputFormat {
  if (format !== undefined && !['png', 'webp', 'jpeg'].includes(format))
    throw new UsageError(`--format must be png, webp or jpeg, got ${format}`);
  const extension = /\.([a-z]+)$/i.exec(out)?.[1]?.toLowerCase();
  const fromExtension = extension === undefined ? undefined : EXTENSION_FORMATS[extension];
  if (format !== undefined && fromExtension !== undefined && format !== fromExtension) {
    throw new UsageError(
      `--format ${format} does not match --out ${out} (a .${extension} file): name the file .${format === 'jpeg' ? 'jpg' : format} or drop --format`,
    );
  }
  return (format as OutputFormat | undefined) ?? fromExtension ?? 'png';
}

function num(
  flag: string,
  raw: string | undefined,
  opts: { int?: boolean; min: number; max: number; multipleOf?: number },
): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  const kind = opts.int ? 'an integer' : 'a number';
  const mult = opts.multipleOf ? ` multiple of ${opts.multipleOf}` : '';
  const ok =
    raw.trim() !== '' &&
    Number.isFinite(v) &&
    (!opts.int || Number.isInteger(v)) &&
    v >= opts.min &&
    v <= opts.max &&
    (!opts.multipleOf || v % opts.multipleOf === 0);
  if (!ok) {
    throw new UsageError(
      mult
        ? `--${flag} must be a${mult} between ${opts.min} and ${opts.max}, got ${raw}`
        : `--${flag} must be ${kind} between ${opts.min} and ${opts.max}, got ${raw}`,
    );
  }
  return v;
}

/** parseArgs reads `--seed -1` as two options; `--seed=-1` keeps the value so range checks can report it. */
function joinNegativeNumbers(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (argv[i].startsWith('--') && !argv[i].includes('=') && next !== undefined && /^-\d/.test(next)) {
      out.push(`${argv[i]}=${next}`);
      i++;
    } else out.push(argv[i]);
  }
  return out;
}

export function parseGenerateArgs(argv: readonly string[]): GenerateArgs {
  let values: Record<string, string | undefined>;
  try {
    const parsed = parseArgs({
      args: joinNegativeNumbers(argv),
      strict: true,
      allowPositionals: false,
      options: Object.fromEntries(FLAGS.filter((f) => f.value).map((f) => [f.flag, { type: 'string' as const }])),
    });
    values = parsed.values as Record<string, string | undefined>;
  } catch (err) {
    throw new UsageError(errorMessage(err).split('\n')[0]);
  }
  if (values.prompt === undefined) throw new UsageError('--prompt is required');
  if (!values.out) throw new UsageError('--out FILE is required');
  const format = outputFormat(values.format, values.out);
  if (values.strength !== undefined && values.image === undefined) throw new UsageError('--strength needs --image');
  if (values.mask !== undefined && values.image === undefined) throw new UsageError('--mask needs --image');

  return {
    model: values.model,
    prompt: values.prompt,
    negativePrompt: values['negative-prompt'] ?? '',
    // Absent: the model's native size, known once it is loaded.
    width: num('width', values.width, { int: true, min: 64, max: 2048, multipleOf: 8 }),
    height: num('height', values.height, { int: true, min: 64, max: 2048, multipleOf: 8 }),
    steps: num('steps', values.steps, { int: true, min: 1, max: 150 }) ?? 20,
    guidance: num('guidance', values.guidance, { min: 0, max: 30 }) ?? 7.5,
    guidanceEnd: num('guidance-end', values['guidance-end'], { min: 0, max: 1 }),
    scheduler: values.scheduler,
    seed: num('seed', values.seed, { int: true, min: 0, max: 4294967295 }),
    numOutputs: num('num-outputs', values['num-outputs'], { int: true, min: 1, max: 4 }) ?? 1,
    image: values.image,
    mask: values.mask,
    strength: num('strength', values.strength, { min: 0, max: 1 }),
    initLatents: values['init-latents'],
    format,
    quality: num('quality', values.quality, { int: true, min: 1, max: 100 }) ?? 80,
    out: values.out,
    rawOut: values['raw-out'],
    threads: num('threads', values.threads, { int: true, min: 1, max: 256 }),
  };
}

/** x.png → x-0.png, x-1.png when there are several outputs. */
export function outputPath(out: string, index: number, count: number): string {
  if (count === 1) return out;
  const dot = out.lastIndexOf('.');
  const slash = Math.max(out.lastIndexOf('/'), out.lastIndexOf('\\'));
  return dot > slash ? `${out.slice(0, dot)}-${index}${out.slice(dot)}` : `${out}-${index}`;
}
