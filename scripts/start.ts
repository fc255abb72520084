// `npm start`: the whole service on this machine (s3rver, the runner on the embedded model, the edge under wrangler dev),
// with its secret key (the same at every start on a state folder) and a ready-to-paste curl; runs until Ctrl-C, then stops every process it started and removes
// the run's files. The edge's state (keys, predictions) stays in the state folder `npm run keys` also uses.
import { parseArgs } from 'node:util';
import { errorMessage } from '@sd/shared/error-message';
import { STATE_DIR_ENV } from '../edge/scripts/local-state.ts';
import { type LocalStack, startLocalStack } from './local-stack.ts';
import { STACK_KEY_FILE } from './stack/stack-key.ts';
import { DEFAULT_EDGE_PORT, resolveStackPlace, type StackPlace } from './stack/stack-place.ts';

const USAGE = `Usage: npm start [-- --port N] [--state DIR] [--verbose]
  --port N      the edge's port (default ${DEFAULT_EDGE_PORT}, or a free one when that is taken); the runner's and s3rver's
                ports are free ones chosen at each start
  --state DIR   the state folder: the edge's KV (API keys, tokenizer), Durable Objects (predictions) and cache.
                Default: $${STATE_DIR_ENV}, else edge/.wrangler/state, the folder \`npm run keys\` and \`npm run demo\` use
                too, so a key made with \`npm run keys -- create\` works here. One stack per folder at a time.
  --verbose     echo every log line of the runner, the edge and s3rver
`;

const { values } = parseArgs({
  options: {
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

/** One line per finished prediction from the edge's JSON log (all lines with --verbose). */
function echo(source: 'runner' | 'edge' | 's3', line: string): void {
  if (values.verbose) {
    process.stdout.write(`[${source}] ${line}\n`);
    return;
  }
  if (source !== 'edge' || !line.startsWith('{')) return;
  try {
    const record = JSON.parse(line) as {
      msg?: string;
      predictionId?: string;
      status?: string;
      error?: string | null;
      metrics?: Record<string, unknown>;
    };
    if (record.msg !== 'prediction finished') return;
    const m = record.metrics ?? {};
    const detail = record.error
      ? ` error: ${record.error}`
      : ` predict_time ${m.predict_time ?? '?'} s, embedding_cache ${m.embedding_cache ?? '-'}`;
    process.stdout.write(`prediction ${record.predictionId} ${record.status}${detail}\n`);
  } catch {
    // not a JSON log line
  }
}

let stack: LocalStack | undefined;
let stopping = false;
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stdout.write('\nstopping...\n');
  await stack?.stop();
  process.exit(code);
}
// All three: npm passes a Ctrl-C on as SIGTERM to a script it runs; a closed terminal sends SIGHUP. A stack still
// starting stops too: startLocalStack's own failure path, or child-process.ts's exit hook for what is left.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void shutdown(0));

const started = Date.now();
let place: StackPlace;
try {
  place = await resolveStackPlace(values, DEFAULT_EDGE_PORT);
  process.stdout.write(`State folder: ${place.stateDir}\n`);
  stack = await startLocalStack({
    stateDir: place.stateDir,
    edgePort: place.edgePort,
    onStep: (m) => process.stdout.write(`- ${m}\n`),
    onLine: echo,
  });
} catch (err) {
  process.stderr.write(`npm start: ${errorMessage(err)}\n`);
  await stack?.stop();
  process.exit(1);
}

const { edgeUrl, apiKey, model } = stack;
const body = JSON.stringify({ input: { prompt: 'a red circle on a blue background', num_inference_steps: 20 } });
process.stdout.write(`
Ready in ${((Date.now() - started) / 1000).toFixed(1)} s.

  Edge (public API)   ${edgeUrl}${place.portNote ? `   (${place.portNote})` : ''}
    playground        ${edgeUrl}/          (paste the secret key below)
    OpenAPI           ${edgeUrl}/openapi.json
    widget            ${edgeUrl}/embed.js
  Runner (Cog)        ${stack.runnerUrl}   (bearer token ${stack.runnerToken})
  S3 (s3rver)         ${stack.s3.endpoint}   bucket ${stack.s3.bucket}
  Model               ${model.ref}
  State folder        ${stack.stateDir}
                      API keys and predictions stay here between runs; \`npm run keys -- create|list|revoke\` manages
                      the keys in it. The runner's and s3rver's ports change at each start; images last one run.

Secret API key (the same at every start: kept in ${stack.stateDir}/${STACK_KEY_FILE}):
  ${apiKey}

Try it:
  curl -s -X POST ${edgeUrl}/v1/models/${model.id}/predictions \\
    -H "Authorization: Bearer ${apiKey}" -H "Content-Type: application/json" -H "Prefer: wait" \\
    -d '${body}'

  or with the replicate client: new Replicate({ auth: '${apiKey}', baseUrl: '${edgeUrl}/v1' }).run('${model.ref}', { input })

Ctrl-C stops everything.
`);
