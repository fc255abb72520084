// `npm run demo -- --prompt "a lighthouse at dusk" --out out.png`: starts the local stack, runs one prediction through
// the public edge API with the real `replicate` client, saves the image, runs the prompt again to show the embedding
// cache hit, and stops everything.
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from '@sd/shared/error-message';
import Replicate, { type Prediction } from 'replicate';
import { describeSceneWorld } from '../gpu-runner/src/scenes/scenes.ts';
import { type LocalStack, startLocalStack } from './local-stack.ts';
import { resolveStackPlace } from './stack/stack-place.ts';

const DEFAULT_PROMPT = 'a red circle in the top left on a blue background';
const USAGE = `Usage: npm run demo -- [--prompt TEXT] [--out out.png] [--width W] [--height H] [--steps 20] [--seed N]
                       [--state DIR] [--port N] [--verbose]
  --prompt defaults to "${DEFAULT_PROMPT}"; width and height to the model's native size (64 for the embedded model).
  --state: the state folder \`npm start\` and \`npm run keys\` use (default $SD_STATE_DIR, else edge/.wrangler/state);
  --port: the edge's port (default: a free one).
`;

function fail(message: string): never {
  process.stderr.write(`demo: ${message}\n${USAGE}`);
  process.exit(2);
}

function intOption(name: string, raw: string | undefined, fallback: number | undefined): number | undefined {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

const { values } = parseArgs({
  options: {
    prompt: { type: 'string' },
    out: { type: 'string', default: 'out.png' },
    width: { type: 'string' },
    height: { type: 'string' },
    steps: { type: 'string' },
    seed: { type: 'string' },
    state: { type: 'string' },
    port: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const prompt = values.prompt ?? DEFAULT_PROMPT;
// Width and height only when asked for: otherwise the runner uses the model's native size (what it was trained at).
const width = intOption('width', values.width, undefined);
const height = intOption('height', values.height, undefined);
const input = {
  prompt,
  ...(width !== undefined ? { width } : {}),
  ...(height !== undefined ? { height } : {}),
  num_inference_steps: intOption('steps', values.steps, 20),
  ...(values.seed !== undefined ? { seed: intOption('seed', values.seed, undefined) } : {}),
};
const outPath = resolve(values.out);

const t0 = Date.now();
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const log = (line: string) => process.stdout.write(`${line}\n`);

function describeMetrics(p: Prediction): string {
  const m = (p.metrics ?? {}) as Record<string, number | string | undefined>;
  const t = (k: string) => (typeof m[k] === 'number' ? `${(m[k] as number).toFixed(3)} s` : '-');
  return [
    `  seed             ${m.seed ?? (p.input as { seed?: number }).seed}`,
    `  embedding_cache  ${m.embedding_cache ?? '-'}`,
    `  timings          predict ${t('predict_time')}, text encoder ${t('text_encoder_time')}, U-Net ${t('unet_time')}, VAE ${t('vae_time')}; total ${t('total_time')}`,
  ].join('\n');
}

/** One prediction with replicate.run; the last prediction the client saw (with its metrics) comes back too. */
async function runOnce(
  replicate: Replicate,
  ref: `${string}/${string}:${string}`,
): Promise<{ urls: string[]; prediction: Prediction }> {
  let last: Prediction | undefined;
  const output = await replicate.run(ref, { input }, (p) => {
    last = p;
  });
  if (!last) throw new Error('the replicate client reported no prediction');
  if (!Array.isArray(output) || output.some((u) => typeof u !== 'string')) {
    throw new Error(`expected a list of image URLs, got ${JSON.stringify(output)}`);
  }
  return { urls: output as string[], prediction: last };
}

let stack: LocalStack | undefined;
// Ctrl-C: a started stack is stopped in order; one still starting is killed by child-process.ts's exit hook.
// (SIGTERM and SIGHUP too: npm and tsx pass a Ctrl-C on as SIGTERM, whose default action would skip that hook.)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (stack) void stack.stop().then(() => process.exit(130));
    else process.exit(130);
  });
}
try {
  const place = await resolveStackPlace(values);
  log(`Starting the local stack (s3rver, runner, edge under wrangler dev); state folder ${place.stateDir}...`);
  stack = await startLocalStack({
    stateDir: place.stateDir,
    edgePort: place.edgePort,
    onStep: (m) => log(`  - ${m}`),
    onLine: values.verbose ? (source, line) => log(`[${source}] ${line}`) : undefined,
  });
  log(`Ready in ${secs(Date.now() - t0)}: edge ${stack.edgeUrl}, model ${stack.model.ref}`);
  const replicate = new Replicate({ auth: stack.apiKey, baseUrl: `${stack.edgeUrl}/v1`, useFileOutput: false });
  const ref = stack.model.ref as `${string}/${string}:${string}`;

  log(`\nThe embedded model draws ${describeSceneWorld()}`);
  const size =
    width !== undefined || height !== undefined ? `${width ?? 'native'}x${height ?? 'native'}` : "the model's native size";
  log(`\nGenerating "${prompt}" at ${size}, ${input.num_inference_steps} steps...`);
  let t = Date.now();
  const first = await runOnce(replicate, ref);
  const res = await fetch(first.urls[0]);
  if (!res.ok) throw new Error(`GET ${first.urls[0]} answered ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  await writeFile(outPath, bytes);
  log(`Saved ${outPath} (${bytes.length} bytes) in ${secs(Date.now() - t)}; prediction ${first.prediction.id}`);
  log(describeMetrics(first.prediction));

  log('\nThe same prompt again (its CLIP embeddings are now cached at the edge; the runner skips the text encoder):');
  t = Date.now();
  const second = await runOnce(replicate, ref);
  log(`Done in ${secs(Date.now() - t)}; prediction ${second.prediction.id}, output ${second.urls[0].split('?')[0]}`);
  log(describeMetrics(second.prediction));
  await stack.stop();
  log(`\nStopped. Whole demo: ${secs(Date.now() - t0)}.`);
} catch (err) {
  process.stderr.write(`demo: ${errorMessage(err)}\n`);
  await stack?.stop();
  process.exit(1);
}
