// `npm run -s generate`: one generation from the command line, on a model directory or the embedded default.
// Exit codes: 0 done, 2 bad arguments or request, 1 anything else.

import { randomInt } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { errorMessage } from '@sd/shared/error-message';
import { sizeFromImage } from '@sd/shared/image-size';
import { DEFAULT_LIMITS } from '@sd/shared/schemas/limits';
import { ensureDefaultModel } from '../default-model/write-model.ts';
import { checkInputImage, encodeImage } from '../image/image-codec.ts';
import { StableDiffusionPipeline } from '../pipeline/pipeline.ts';
import { type GenerateRequest, InvalidRequestError, type StepProgress } from '../pipeline/types.ts';
import { type GenerateArgs, outputPath, parseGenerateArgs, USAGE, UsageError } from './generate-args.ts';

if (process.argv.includes('--help')) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

function readFileArg(flag: string, path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new UsageError(`--${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
  }
}

function readInitLatents(path: string, expected: readonly number[]): Float32Array {
  const bytes = readFileArg('init-latents', path);
  const count = expected.reduce((a, b) => a * b, 1);
  if (bytes.byteLength !== count * 4) {
    throw new UsageError(
      `--init-latents must hold float32 [${expected.join(', ')}] = ${count * 4} bytes, got ${bytes.byteLength}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

function progressBar(): (p: StepProgress) => void {
  if (!process.stderr.isTTY) return () => {};
  return (p) => {
    const width = 30;
    const done = Math.round((p.step / p.total) * width);
    const line = `[${'#'.repeat(done)}${'-'.repeat(width - done)}] ${p.step}/${p.total} ${(p.elapsedMs / 1000).toFixed(1)}s`;
    process.stderr.write(`\r${line}${p.step === p.total ? '\n' : ''}`);
  };
}

async function main(args: GenerateArgs): Promise<void> {
  const modelDir = args.model ?? (await ensureDefaultModel());
  const pipeline = await StableDiffusionPipeline.load(modelDir, {
    intraOpNumThreads: args.threads,
    // Spinning idle threads cost 25-30% wall time on a shared 2-core machine (BENCHMARKS.md).
    allowSpinning: false,
    logger: (level, message) => process.stderr.write(`${level}: ${message}\n`),
  });
  try {
    const seed = args.seed ?? randomInt(0, 2 ** 32);
    const image = args.image ? readFileArg('image', args.image) : undefined;
    // As the runner: img2img without a size takes the image's own; txt2img the model's native size.
    const { width, height } = image
      ? sizeFromImage(
          await checkInputImage('--image', image),
          { width: args.width, height: args.height },
          { ...DEFAULT_LIMITS, sideMultiple: pipeline.sideMultiple },
        )
      : { width: args.width ?? pipeline.nativeSize, height: args.height ?? pipeline.nativeSize };
    const request: GenerateRequest = {
      prompt: args.prompt,
      negativePrompt: args.negativePrompt,
      width,
      height,
      steps: args.steps,
      guidanceScale: args.guidance,
      guidanceEnd: args.guidanceEnd,
      scheduler: args.scheduler,
      seed,
      numOutputs: args.numOutputs,
      strength: args.strength,
    };
    if (image) request.image = { kind: 'encoded', bytes: image };
    if (args.mask) request.mask = { kind: 'encoded', bytes: readFileArg('mask', args.mask) };
    if (args.initLatents) {
      const c = pipeline.model.io.latentChannels;
      request.initLatents = readInitLatents(args.initLatents, [args.numOutputs, c, height / 8, width / 8]);
    }

    const result = await pipeline.generate(request, { onProgress: progressBar() });

    for (const [i, image] of result.images.entries()) {
      const path = outputPath(args.out, i, result.images.length);
      writeFileSync(path, await encodeImage(image.rgb, result.width, result.height, args.format, args.quality));
      process.stdout.write(`wrote ${path} (seed ${image.seed})\n`);
    }
    if (args.rawOut) {
      const per = 3 * result.width * result.height;
      const raw = new DataView(new ArrayBuffer(per * 4 * result.images.length));
      result.images.forEach((image, i) => {
        for (let k = 0; k < per; k++) raw.setFloat32((i * per + k) * 4, image.decoded[k], true);
      });
      writeFileSync(args.rawOut, new Uint8Array(raw.buffer));
    }
    process.stdout.write(`seed: ${seed}\n`);
    const t = result.timings;
    process.stderr.write(
      `scheduler ${result.scheduler}, text ${t.textEncoderMs.toFixed(0)} ms${result.textEncoderSkipped ? ' (skipped)' : ''}, unet ${t.unetMs.toFixed(0)} ms, vae ${t.vaeMs.toFixed(0)} ms, total ${t.totalMs.toFixed(0)} ms\n`,
    );
  } finally {
    await pipeline.release();
  }
}

let args: GenerateArgs;
try {
  args = parseGenerateArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`error: ${errorMessage(err)}\n`);
  process.exit(2);
}
main(args).catch((err: unknown) => {
  const bad = err instanceof UsageError || err instanceof InvalidRequestError;
  process.stderr.write(`error: ${errorMessage(err)}\n`);
  process.exit(bad ? 2 : 1);
});
