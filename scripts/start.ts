// `npm start`: the whole service on this machine (s3rver, the runner on the embedded model, the edge under wrangler dev),
// with a fresh secret key and a ready-to-paste curl; runs until Ctrl-C, then stops every process it started.
import { parseArgs } from 'node:util';
import { type LocalStack, startLocalStack } from './local-stack.ts';

const USAGE = `Usage: npm start [-- --state DIR] [--verbose]
  --state DIR   keep the edge's local KV, Durable Objects and queues in DIR between runs (default: a temporary folder)
  --verbose     echo every log line of the runner, the edge and s3rver
`;

const { values } = parseArgs({
  options: { state: { type: 'string' }, verbose: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
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
// All three: npm and tsx pass a Ctrl-C on as SIGTERM; a closed terminal sends SIGHUP.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void shutdown(0));

const started = Date.now();
try {
  stack = await startLocalStack({
    stateDir: values.state,
    onStep: (m) => process.stdout.write(`- ${m}\n`),
    onLine: echo,
  });
} catch (err) {
  process.stderr.write(`npm start: ${(err as Error).message}\n`);
  process.exit(1);
}

const { edgeUrl, apiKey, model } = stack;
const body = JSON.stringify({ input: { prompt: 'a lighthouse at dusk', width: 256, height: 256, num_inference_steps: 20 } });
process.stdout.write(`
Ready in ${((Date.now() - started) / 1000).toFixed(1)} s.

  Edge (public API)   ${edgeUrl}          OpenAPI: ${edgeUrl}/openapi.json   widget: ${edgeUrl}/embed.js
  Runner (Cog)        ${stack.runnerUrl}   (bearer token ${stack.runnerToken})
  S3 (s3rver)         ${stack.s3.endpoint}   bucket ${stack.s3.bucket}
  Model               ${model.ref}

Secret API key (shown once; stored only as a hash in the edge's local KV):
  ${apiKey}

Try it:
  curl -s -X POST ${edgeUrl}/v1/models/${model.id}/predictions \\
    -H "Authorization: Bearer ${apiKey}" -H "Content-Type: application/json" -H "Prefer: wait" \\
    -d '${body}'

  or with the replicate client: new Replicate({ auth: '${apiKey}', baseUrl: '${edgeUrl}/v1' }).run('${model.ref}', { input })

Ctrl-C stops everything.
`);
