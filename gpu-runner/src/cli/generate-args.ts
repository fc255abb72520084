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

export const USAGE = `usage: npm run -s generate -- [--model DIR] --prompt TEXT [--negative-prompt TEXT] [--width W] [--height H]
  [--steps N] [--guidance G] [--scheduler NAME] [--seed S] [--num-outputs N] [--image FILE --strength X]
  [--mask FILE] [--init-latents FILE] [--format png|webp|jpeg] [--quality Q] [--threads N] --out FILE.png [--raw-out FILE]`;

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
      options: Object.fromEntries(
        [
          'model',
          'prompt',
          'negative-prompt',
          'width',
          'height',
          'steps',
          'guidance',
          'scheduler',
          'seed',
          'num-outputs',
          'image',
          'strength',
          'mask',
          'init-latents',
          'format',
          'quality',
          'out',
          'raw-out',
          'threads',
        ].map((k) => [k, { type: 'string' as const }]),
      ),
    });
    values = parsed.values as Record<string, string | undefined>;
  } catch (err) {
    throw new UsageError(errorMessage(err).split('\n')[0]);
  }
  if (values.prompt === undefined) throw new UsageError('--prompt is required');
  if (!values.out) throw new UsageError('--out FILE is required');
  const extFormat = /\.(png|webp|jpe?g)$/i.exec(values.out)?.[1]?.toLowerCase().replace('jpg', 'jpeg') as
    | OutputFormat
    | undefined;
  const format = (values.format ?? extFormat ?? 'png') as OutputFormat;
  if (!['png', 'webp', 'jpeg'].includes(format)) throw new UsageError(`--format must be png, webp or jpeg, got ${values.format}`);
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
