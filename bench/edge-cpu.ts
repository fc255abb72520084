// Bench: the edge isolate's own CPU per request kind, from CPU profiles of the worker's isolate under wrangler dev
// (not the wrangler process group), split into our code / hono / zod / other packages / wrangler's shims / runtime.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tokenizePromptPair } from '../edge/src/embeddings/prompt-tokens.ts';
import { type LocalStack, startLocalStack } from '../scripts/local-stack.ts';
import { embeddingCacheKey } from '../shared/src/embedding-cache-key.ts';
import { ClipTokenizer } from '../shared/src/tokenizer/index.ts';
import {
  bundleMap,
  CATEGORIES,
  type CpuSplit,
  IsolateInspector,
  nowMicros,
  ProfileAttributor,
  splitByWindows,
} from './isolate-profiler.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REFERENCE = process.env.SD_REFERENCE_DIR ?? resolve(ROOT, '..', 'shared', 'reference');
const TOKENIZER_DIR = join(REFERENCE, 'tokenizer');
const RESULTS_DIR = join(ROOT, 'bench', 'edge-cpu-results');
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const WRANGLER = join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js');

/** Models with the real CLIP tokenizer, each under its own KV name, so each one's first create loads it cold. */
const COLD_MODELS = 4;
const COUNTS = { health: 100, refused: 100, create: 40, read: 100 } as const;
const SAMPLING_INTERVAL_US = 50;
const HIT_PROMPT = 'a red fox in snow';
const HIDDEN = 768;

interface KindResult {
  label: string;
  count: number;
  inRequests: CpuSplit;
  background: CpuSplit;
  intervalUs: number;
  perWindowMs: number[];
}

function fail(message: string): never {
  throw new Error(`bench edge-cpu: ${message}`);
}

function runCli(command: string, args: string[], cwd: string): void {
  const r = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', FORCE_COLOR: '0', CI: '1' },
  });
  if (r.status !== 0) fail(`${args.slice(0, 3).join(' ')} exited with ${r.status}: ${(r.stderr || r.stdout).slice(-600)}`);
}

/** A runner pool that accepts every dispatch with 202 and runs nothing, remembering which predictions it saw. */
async function startSink(): Promise<{ url: string; seen: Set<string>; close(): Promise<void> }> {
  const seen = new Set<string>();
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const put = req.method === 'PUT' ? /^\/predictions\/([^/?]+)$/.exec(req.url ?? '') : null;
      if (put) seen.add(decodeURIComponent(put[1]));
      res.writeHead(put ? 202 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: put?.[1] ?? null, status: 'starting' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Writes zero embeddings for HIT_PROMPT (and the empty negative prompt) of `modelKey` into the local EMBEDDINGS KV. */
async function seedHit(tokenizer: ClipTokenizer, modelKey: string, persistTo: string, work: string): Promise<void> {
  const tokens = tokenizePromptPair(tokenizer, HIT_PROMPT, '', { mode: 'chunk', weighting: true });
  // As the edge's cacheKeysFor, with the default clip_skip of 1.
  const key = (side: { ids: number[][]; weights: number[][] }) =>
    embeddingCacheKey({ model: modelKey, ids: side.ids, weights: side.weights, clipSkip: 1 });
  const keys = { prompt: await key(tokens.prompt), negative: await key(tokens.negative) };
  const side = (windows: number[][]) => {
    const shape = [1, windows.reduce((n, w) => n + w.length, 0), HIDDEN];
    return { value: Buffer.alloc(shape[1] * HIDDEN * 4).toString('base64'), shape };
  };
  const entries = [
    { key: keys.prompt, ...side(tokens.prompt.ids) },
    { key: keys.negative, ...side(tokens.negative.ids) },
  ].map(({ key, value, shape }) => ({ key, value, base64: true, metadata: { dtype: 'float32', shape } }));
  const file = join(work, 'embeddings.json');
  writeFileSync(file, JSON.stringify(entries));
  runCli(
    process.execPath,
    [WRANGLER, 'kv', 'bulk', 'put', file, '--binding', 'EMBEDDINGS', '--local', '--persist-to', persistTo],
    join(ROOT, 'edge'),
  );
}

interface Request {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  expect: number;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One profile over `count` sequential requests. Each request's window is [sent, answered]; after a create the bench
 * waits until the sink saw its dispatch and the isolate has been quiet a moment, so the queue consumer's work lands
 * between windows (reported as background) and not in the next request's.
 */
async function measure(
  stack: LocalStack,
  inspector: IsolateInspector,
  attributor: ProfileAttributor,
  sink: { seen: Set<string> },
  label: string,
  count: number,
  request: (i: number) => Request,
  check?: (body: Record<string, unknown>) => void,
): Promise<KindResult> {
  process.stdout.write(`  ${label} x${count}\n`);
  const auth = { authorization: `Bearer ${stack.apiKey}` };
  const windows: Array<{ start: number; end: number }> = [];
  await inspector.start(SAMPLING_INTERVAL_US);
  try {
    for (let i = 0; i < count; i++) {
      const r = request(i);
      const start = nowMicros();
      const res = await fetch(`${stack.edgeUrl}${r.path}`, {
        method: r.method,
        headers: r.body === undefined ? auth : { ...auth, 'content-type': 'application/json' },
        body: r.body === undefined ? undefined : JSON.stringify(r.body),
      });
      const text = await res.text();
      windows.push({ start, end: nowMicros() });
      if (res.status !== r.expect) fail(`${label} #${i}: expected ${r.expect}, got ${res.status}: ${text.slice(0, 300)}`);
      const body = JSON.parse(text) as Record<string, unknown>;
      check?.(body);
      if (r.method === 'POST' && res.status === 201) {
        const id = String(body.id);
        const t0 = Date.now();
        while (!sink.seen.has(id)) {
          if (Date.now() - t0 > 10_000) fail(`${label}: prediction ${id} was not dispatched within 10 s`);
          await pause(5);
        }
        await pause(40);
      } else {
        await pause(2);
      }
    }
  } catch (err) {
    await inspector.stop().catch(() => null);
    throw err;
  }
  const profile = await inspector.stop();
  const dump = process.env.EDGE_CPU_DUMP;
  if (dump) {
    mkdirSync(dump, { recursive: true });
    const base = join(dump, label.replace(/[^\w]+/g, '-'));
    writeFileSync(`${base}.cpuprofile`, JSON.stringify(profile));
    writeFileSync(`${base}.windows.json`, JSON.stringify(windows));
  }
  const split = splitByWindows(attributor, profile, windows);
  return { label, count, ...split };
}

const f2 = (x: number) => x.toFixed(2);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? 0;

function table(results: KindResult[]): string {
  const head = [
    'request kind',
    'n',
    'isolate CPU ms/req',
    'median',
    'of which in DOs',
    'worker (not DO)',
    ...CATEGORIES,
    'of which logging',
    'background ms/req',
  ];
  const lines = [
    `| ${head.join(' | ')} |`,
    `| --- | ${head
      .slice(1)
      .map(() => '---:')
      .join(' | ')} |`,
  ];
  for (const r of results) {
    const per = (x: number) => f2(x / r.count);
    const s = r.inRequests;
    lines.push(
      `| ${r.label} | ${r.count} | ${per(s.totalMs)} | ${f2(median(r.perWindowMs))} | ${per(s.durableObjectMs)} | ${per(s.totalMs - s.durableObjectMs)} | ${CATEGORIES.map((c) => per(s.byCategory[c])).join(' | ')} | ${per(s.loggingMs)} | ${per(r.background.totalMs)} |`,
    );
  }
  return lines.join('\n');
}

function comparison(before: KindResult[], after: KindResult[]): string {
  const lines = [
    '| request kind | isolate CPU ms/req (mean) before -> after | median before -> after | worker (not DO) before -> after | logging before -> after |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const a of after) {
    const b = before.find((x) => x.label === a.label);
    if (!b) continue;
    const pair = (pick: (s: CpuSplit) => number) => {
      const x = pick(b.inRequests) / b.count;
      const y = pick(a.inRequests) / a.count;
      return `${f2(x)} -> ${f2(y)}${x > 0 ? ` (${(y / x).toFixed(2)}x)` : ''}`;
    };
    lines.push(
      `| ${a.label} | ${pair((s) => s.totalMs)} | ${f2(median(b.perWindowMs))} -> ${f2(median(a.perWindowMs))} | ${pair((s) => s.totalMs - s.durableObjectMs)} | ${pair((s) => s.loggingMs)} |`,
    );
  }
  return lines.join('\n');
}

export async function run(): Promise<{ title: string; markdown: string }> {
  if (!existsSync(join(TOKENIZER_DIR, 'vocab.json'))) fail(`needs the real CLIP tokenizer files in ${TOKENIZER_DIR}`);
  const clip = ClipTokenizer.fromFiles({
    vocab: readFileSync(join(TOKENIZER_DIR, 'vocab.json'), 'utf8'),
    merges: readFileSync(join(TOKENIZER_DIR, 'merges.txt'), 'utf8'),
  });
  const stateDir = mkdtempSync(join(tmpdir(), 'sd-edge-cpu-'));
  // startLocalStack({ stateDir }) persists the edge's KV and Durable Objects in stateDir itself (wrangler's layout).
  const persistTo = stateDir;
  const sink = await startSink();
  let stack: LocalStack | undefined;
  let inspector: IsolateInspector | undefined;
  try {
    const names = Array.from({ length: COLD_MODELS }, (_, k) => `clip-bench-${k}`);
    for (const name of names) {
      process.stdout.write(`  uploading the CLIP tokenizer as ${name}\n`);
      runCli(
        process.execPath,
        [
          TSX,
          join(ROOT, 'edge', 'scripts', 'upload-tokenizer.ts'),
          '--name',
          name,
          '--dir',
          TOKENIZER_DIR,
          '--local',
          '--persist-to',
          persistTo,
        ],
        ROOT,
      );
    }
    const model = (k: number) => ({ id: `sd/clip-bench-${k}`, version: 'v1', ref: `sd/clip-bench-${k}:v1` });
    await seedHit(clip, `${model(0).id}:${model(0).version}`, persistTo, stateDir);

    stack = await startLocalStack({
      stateDir,
      secretKey: { ratePerMinute: 10_000_000, maxInFlight: 10_000_000 },
      runnerPool: () => [sink.url],
      extraModels: () =>
        names.map((tokenizer, k) => ({
          id: model(k).id,
          version: model(k).version,
          backend: 'cog',
          runners: [sink.url],
          tokenizer,
        })),
      // Sunk predictions stay "processing": no silence alarm may requeue them during the bench.
      edgeVars: { RUNNER_SILENCE_SECONDS: '3600' },
      onStep: (m) => process.stdout.write(`  ${m}\n`),
    });
    const s = stack;
    inspector = await IsolateInspector.connect(s.edge.inspectorPort);
    const attributor = new ProfileAttributor(bundleMap(await inspector.bundlePath()));
    const m = (label: string, count: number, request: (i: number) => Request, check?: (b: Record<string, unknown>) => void) =>
      measure(s, inspector as IsolateInspector, attributor, sink, label, count, request, check);
    const tag = Date.now().toString(36);
    const create = (k: number, prompt: string): Request => ({
      method: 'POST',
      path: '/v1/predictions',
      body: { version: model(k).ref, input: { prompt, width: 64, height: 64, num_inference_steps: 1 } },
      expect: 201,
    });
    const cache = (want: string) => (b: Record<string, unknown>) => {
      const got = (b.metrics as { embedding_cache?: string } | undefined)?.embedding_cache;
      if (got !== want) fail(`prediction ${String(b.id)} reports embedding_cache ${got}, expected ${want}`);
    };

    const results: KindResult[] = [];
    // The isolate has served only the stack's start-up probes (GET /health, GET /v1/predictions) before this.
    results.push(await m('first create of the isolate (cold)', 1, () => create(0, `a red fox c${tag} snow`), cache('miss')));
    results.push(
      await m(`first create per tokenizer (${COLD_MODELS - 1} more CLIP tokenizers)`, COLD_MODELS - 1, (i) =>
        create(i + 1, `a red fox c${tag}x${i} snow`),
      ),
    );
    results.push(await m('GET /health', COUNTS.health, () => ({ method: 'GET', path: '/health', expect: 200 })));
    results.push(
      await m('POST /v1/predictions 422 (width 65)', COUNTS.refused, () => ({
        method: 'POST',
        path: '/v1/predictions',
        body: { version: model(0).ref, input: { prompt: HIT_PROMPT, width: 65, height: 64 } },
        expect: 422,
      })),
    );
    const created: string[] = [];
    const remember = (want: string) => (b: Record<string, unknown>) => {
      cache(want)(b);
      created.push(String(b.id));
    };
    results.push(
      await m(
        'POST 201, embedding cache miss (warm)',
        COUNTS.create,
        (i) => create(0, `a red fox u${tag}x${i} snow`),
        remember('miss'),
      ),
    );
    results.push(await m('POST 201, embedding cache hit (warm)', COUNTS.create, () => create(0, HIT_PROMPT), remember('hit')));
    results.push(
      await m('GET /v1/predictions/{id}', COUNTS.read, (i) => ({
        method: 'GET',
        path: `/v1/predictions/${created[i % created.length]}`,
        expect: 200,
      })),
    );

    const save = process.env.EDGE_CPU_SAVE;
    if (save) {
      mkdirSync(RESULTS_DIR, { recursive: true });
      writeFileSync(join(RESULTS_DIR, `${save}.json`), `${JSON.stringify(results, null, 1)}\n`);
    }
    const beforeFile = join(RESULTS_DIR, 'before.json');
    const before =
      save !== 'before' && existsSync(beforeFile) ? (JSON.parse(readFileSync(beforeFile, 'utf8')) as KindResult[]) : null;
    return {
      title: 'Edge: isolate CPU per request kind (CPU profiles of the worker isolate)',
      markdown: report(results, before),
    };
  } finally {
    inspector?.close();
    await stack?.stop();
    await sink.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

const NOTES = `
What is left (from the profiles' top functions): on a tokenizer's first load, PairRankTable's build (48,894 inserts into
typed arrays) is most of the ~14 ms; the isolate's very first create adds the first run (lazy compilation) of the
create path and its zod schemas. A warm create's own code is mostly createPrediction (BPE of the new word on a miss,
the record) and the runtime's KV, Cache and Durable Object calls; hono and zod stay under 0.3 ms. The background
column is the queue consumer, which on a hit base64-encodes both [1, 77, 768] tensors for the PUT.
`;

function report(results: KindResult[], before: KindResult[] | null): string {
  const interval = results.map((r) => r.intervalUs).sort((a, b) => a - b)[Math.floor(results.length / 2)];
  return `
What the edge worker's isolate itself spends per request, from V8 CPU profiles of that isolate (Profiler domain of
wrangler dev's inspector, over a websocket from the bench), not from the wrangler process group: Miniflare's KV, Queue
and Durable Object simulators run in other isolates or processes, and wrangler's log relay in its Node process, so
none of them is counted. The stack is \`startLocalStack()\` with ${COLD_MODELS} extra models whose tokenizer is the real
CLIP one (\`shared/reference/tokenizer\`: vocab.json 49,408 tokens, merges.txt 48,894 merges), each uploaded under its own
KV name with \`npm run tokenizer:upload\`; every model's runner pool is a sink in the bench that accepts each dispatch
with 202. The embedding cache holds zero embeddings for the hit prompt (written to the local KV before start-up).

Method: one profile per row over sequential requests (concurrency 1). A sample counts for a request when it falls
between the request's send and its answer (V8's and Node's clocks are both CLOCK_MONOTONIC) and its stack is not the
queue consumer's; everything else (the consumer's dispatch of each create, work after the answer) is the background
column. Samples weigh the gap to the previous sample, capped at the median gap (${interval} µs here; workerd samples
only while the isolate runs). Frames are mapped through the bundle's source map to their package: ours
(edge/src, shared/src), hono, zod, other packages, wrangler/miniflare shims (the facade and the Durable Object wrapper
wrangler adds), runtime (V8 builtins, GC, workerd's APIs and node-compat JS such as console's formatter). "In DOs" is
CPU under a Durable Object method (KeyLimiter, PredictionIndex, PredictionObject), which Cloudflare bills to the
object, not to the request's CPU limit; "worker (not DO)" is what the request's own invocation spends. "Logging" is
CPU under edge/src/log.ts (JSON.stringify of the line, console.log and the inspector's copy of it for wrangler's
relay, which a deployed worker does not pay). "Median" is the median request's CPU: V8 samples on wall-clock ticks,
so time the isolate's thread spends preempted by other processes counts as CPU of whatever it was running; on this
shared machine (load average ${loadavg()[0].toFixed(1)} on ${cpus().length} cores at the end of the run) means are inflated by it and
the median is the steadier number. Compare rows of runs made back to back, as ratios.

${table(results)}
${
  before
    ? `
Before -> after (the same bench on the previous code: tokenizer from vocab.json + merges.txt, every log line at info):

${comparison(before, results)}
`
    : ''
}${NOTES}`;
}
