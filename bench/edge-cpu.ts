// Bench: the edge isolate's own CPU per request kind, from CPU profiles of the worker's isolate under wrangler dev
// (not the wrangler process group), split into our code / hono / zod / other packages / wrangler's shims / runtime.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tokenizePromptPair } from '../edge/src/embeddings/prompt-tokens.ts';
import { type LocalStack, startLocalStack } from '../scripts/local-stack.ts';
import { embeddingCacheKey } from '../shared/src/embedding-cache-key.ts';
import { ClipTokenizer } from '../shared/src/tokenizer/index.ts';
import {
  bundleMap,
  CATEGORIES,
  type CpuSplit,
  emptySplit,
  IsolateInspector,
  nowMicros,
  ProfileAttributor,
  splitByWindows,
  topFunctions,
  type WindowedSplit,
} from './isolate-profiler.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REFERENCE = process.env.SD_REFERENCE_DIR ?? resolve(ROOT, '..', 'shared', 'reference');
const TOKENIZER_DIR = join(REFERENCE, 'tokenizer');
const RESULTS_DIR = join(ROOT, 'bench', 'edge-cpu-results');
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const WRANGLER = join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js');

/** Models with the real CLIP tokenizer, each under its own KV name, so each one's first create loads it cold. */
const COLD_MODELS = 4;
/** Isolates measured cold: the edge is restarted between runs. */
const COLD_RUNS = 5;
const COUNTS = { health: 100, refused: 100, create: 40, read: 100 } as const;
const SAMPLING_INTERVAL_US = 50;
const HIT_PROMPT = 'a red fox in snow';
const HIDDEN = 768;

interface KindResult extends WindowedSplit {
  label: string;
  count: number;
}

function addSplit(into: CpuSplit, from: CpuSplit): void {
  into.totalMs += from.totalMs;
  into.durableObjectMs += from.durableObjectMs;
  into.loggingMs += from.loggingMs;
  into.doCallMs += from.doCallMs;
  for (const c of CATEGORIES) into.byCategory[c] += from.byCategory[c];
}

/** One row from the same kind measured on several isolates (the cold runs). */
function mergeRuns(runs: KindResult[]): KindResult {
  const merged: KindResult = {
    label: runs[0].label,
    count: 0,
    inRequests: emptySplit(),
    background: emptySplit(),
    intervalUs: median(runs.map((r) => r.intervalUs)),
    perWindowMs: [],
    perWindowWorkerMs: [],
    perWindowDeployedMs: [],
  };
  for (const r of runs) {
    merged.count += r.count;
    addSplit(merged.inRequests, r.inRequests);
    addSplit(merged.background, r.background);
    merged.perWindowMs.push(...r.perWindowMs);
    merged.perWindowWorkerMs.push(...r.perWindowWorkerMs);
    merged.perWindowDeployedMs.push(...r.perWindowDeployedMs);
  }
  return merged;
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
  check: ((body: Record<string, unknown>) => void) | undefined,
  run: number,
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
    const base = join(dump, `run${run}`, label.replace(/[^\w]+/g, '-'));
    mkdirSync(dirname(base), { recursive: true });
    writeFileSync(`${base}.cpuprofile`, JSON.stringify(profile));
    writeFileSync(`${base}.windows.json`, JSON.stringify(windows));
    writeFileSync(
      `${base}.top.txt`,
      `${topFunctions(attributor, profile, windows)}\n\n${topFunctions(attributor, profile, windows, { durableObjects: true })}\n`,
    );
  }
  const split = splitByWindows(attributor, profile, windows);
  return { label, count, ...split };
}

const f2 = (x: number) => x.toFixed(2);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? 0;

/** Per-request figures of a row: isolate, worker (not DO) and worker less its DO calls, each as mean and median. */
function figures(r: KindResult) {
  const s = r.inRequests;
  const worker = s.totalMs - s.durableObjectMs;
  return {
    isolate: s.totalMs / r.count,
    isolateMedian: median(r.perWindowMs),
    inDOs: s.durableObjectMs / r.count,
    worker: worker / r.count,
    workerMedian: median(r.perWindowWorkerMs),
    doCalls: s.doCallMs / r.count,
    deployed: (worker - s.doCallMs) / r.count,
    deployedMedian: median(r.perWindowDeployedMs),
    logging: s.loggingMs / r.count,
    background: r.background.totalMs / r.count,
  };
}

function table(results: KindResult[]): string {
  const head = [
    'request kind',
    'n',
    'isolate CPU mean',
    'median',
    'of which in DOs',
    '**worker (not DO) mean**',
    '**median**',
    'of which DO calls (caller side)',
    'worker less DO calls mean',
    'median',
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
    const f = figures(r);
    const per = (x: number) => f2(x / r.count);
    lines.push(
      `| ${r.label} | ${r.count} | ${f2(f.isolate)} | ${f2(f.isolateMedian)} | ${f2(f.inDOs)} | **${f2(f.worker)}** | **${f2(f.workerMedian)}** | ${f2(f.doCalls)} | ${f2(f.deployed)} | ${f2(f.deployedMedian)} | ${CATEGORIES.map((c) => per(r.inRequests.byCategory[c])).join(' | ')} | ${f2(f.logging)} | ${f2(f.background)} |`,
    );
  }
  return lines.join('\n');
}

function comparison(before: KindResult[], after: KindResult[]): string {
  const lines = [
    '| request kind | worker (not DO) mean, before -> after | worker (not DO) median, before -> after | worker less DO calls mean | worker less DO calls median | isolate CPU mean |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  const pair = (x: number, y: number) => `${f2(x)} -> ${f2(y)}${x > 0 ? ` (${(y / x).toFixed(2)}x)` : ''}`;
  for (const a of after) {
    const b = before.find((x) => x.label === a.label);
    if (!b) continue;
    const [fb, fa] = [figures(b), figures(a)];
    lines.push(
      `| ${a.label} | ${pair(fb.worker, fa.worker)} | ${pair(fb.workerMedian, fa.workerMedian)} | ${pair(fb.deployed, fa.deployed)} | ${pair(fb.deployedMedian, fa.deployedMedian)} | ${pair(fb.isolate, fa.isolate)} |`,
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
          // The sink never finishes a prediction: every create of the bench must find a free push slot.
          pushSlots: 1000,
          tokenizer,
        })),
      // Sunk predictions stay "processing": no silence alarm may requeue them during the bench.
      edgeVars: { RUNNER_SILENCE_SECONDS: '3600' },
      onStep: (m) => process.stdout.write(`  ${m}\n`),
    });
    const s = stack;
    /** A profiling session on the stack's current edge isolate (a restart starts a new isolate and bundle). */
    const session = async (run: number) => {
      inspector?.close();
      inspector = await IsolateInspector.connect(s.edge.inspectorPort);
      const bundle = await inspector.bundlePath();
      const attributor = new ProfileAttributor(bundleMap(bundle));
      if (process.env.EDGE_CPU_DUMP) {
        const dir = join(process.env.EDGE_CPU_DUMP, `run${run}`);
        mkdirSync(dir, { recursive: true });
        for (const file of [bundle, `${bundle}.map`]) copyFileSync(file, join(dir, basename(file)));
      }
      const on = inspector;
      return (label: string, count: number, request: (i: number) => Request, check?: (b: Record<string, unknown>) => void) =>
        measure(s, on, attributor, sink, label, count, request, check, run);
    };
    let m = await session(0);
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

    // Cold rows, once per isolate: each run restarts wrangler dev (same state), so every run's first create meets an
    // isolate that has served only the start-up probes (GET /health, GET /v1/predictions) and no tokenizer.
    const coldLabel = 'first create of the isolate (cold)';
    const perTokenizerLabel = `first create per tokenizer (${COLD_MODELS - 1} more CLIP tokenizers)`;
    const cold: KindResult[] = [];
    const perTokenizer: KindResult[] = [];
    for (let run = 0; run < COLD_RUNS; run++) {
      if (run > 0) {
        process.stdout.write(`  restarting the edge (cold run ${run + 1} of ${COLD_RUNS})\n`);
        await s.restartEdge();
        m = await session(run);
      }
      cold.push(await m(coldLabel, 1, () => create(0, `a red fox c${tag}r${run} snow`), cache('miss')));
      perTokenizer.push(await m(perTokenizerLabel, COLD_MODELS - 1, (i) => create(i + 1, `a red fox c${tag}r${run}x${i} snow`)));
    }

    const results: KindResult[] = [mergeRuns(cold), mergeRuns(perTokenizer)];
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
What is left (from the profiles' top functions; EDGE_CPU_DUMP=DIR writes them beside each profile): a tokenizer's
first load is now a KV read and typed-array views (0.2-0.9 ms on the cold rows; before, building the merge-rank index
of 48,894 merges cost ~8 ms of the cold create and of each further tokenizer's first create). The rest of a cold
create is the first run (lazy compilation) of the create path: tokenization ~1.5-2 ms (the CLIP pre-tokenizer's
Unicode regex compiles on first use, ~0.7 ms), zod's first build and parse of the input schema ~1-1.5 ms, and GC;
plus ~2 ms of DO calls that open new objects (the model's ModelQueue after a restart, the PredictionObject). A warm
create's own CPU is ~1 ms besides its DO calls: console.log of its one info line (~0.3 ms here, with the inspector
attached), the embedding-cache check (Cache API match, KV on a front miss), SHA-256 of the two cache keys and the
stream token's HMAC, zod and hono under 0.1 ms each; its code did not change here, and its before/after ratios are
this machine's noise. The warm create was already under 3 ms once the bench stopped counting as the request's what
is not: the dispatch's base64 of both tensors (it runs in the ModelQueue, interleaved with the answer in the local
isolate) and the PredictionObject's storage helper. The background column is the ModelQueue's push of each create,
which on a hit base64-encodes both [1, 77, 768] tensors for the PUT (a half hit now encodes nothing).
`;

/** Targets of issue 9 on the worker's own CPU (not DO): the first create of a cold isolate and a warm create. */
const TARGETS = [
  { label: 'first create of the isolate (cold)', ms: 20 },
  { label: 'POST 201, embedding cache miss (warm)', ms: 3 },
  { label: 'POST 201, embedding cache hit (warm)', ms: 3 },
];

function targets(results: KindResult[]): string {
  const lines = TARGETS.flatMap(({ label, ms }) => {
    const r = results.find((x) => x.label === label);
    if (!r) return [];
    const f = figures(r);
    const verdict = (x: number) => `${f2(x)} ms ${x < ms ? 'met' : '**not met**'}`;
    return [
      `- ${label}: under ${ms} ms of worker (not DO) CPU: mean ${verdict(f.worker)}, median ${verdict(f.workerMedian)} (less DO calls: mean ${f2(f.deployed)}, median ${f2(f.deployedMedian)}).`,
    ];
  });
  return lines.join('\n');
}

function report(results: KindResult[], before: KindResult[] | null): string {
  const interval = median(results.map((r) => r.intervalUs));
  return `
What the edge worker's isolate itself spends per request, from V8 CPU profiles of that isolate (Profiler domain of
wrangler dev's inspector, over a websocket from the bench), not from the wrangler process group: Miniflare's KV and
Cache simulators run in other isolates or processes, and wrangler's log relay in its Node process, so none of them is
counted. The stack is \`startLocalStack()\` with ${COLD_MODELS} extra models whose tokenizer is the real CLIP one
(\`shared/reference/tokenizer\`: vocab.json 49,408 tokens, merges.txt 48,894 merges), each uploaded under its own KV name
with \`npm run tokenizer:upload\` (the compiled form, \`tokenizer.sdtk\`); every model's push target is a sink in the
bench that accepts each dispatch with 202. The embedding cache holds zero embeddings for the hit prompt (written to the
local KV before start-up). The cold rows are measured on ${COLD_RUNS} isolates: the bench restarts wrangler dev (same state)
between runs; every other row is one profile of sequential requests (concurrency 1) on the last isolate.

Method: a sample counts for a request when it falls between the request's send and its answer (V8's and Node's clocks
are both CLOCK_MONOTONIC) and its stack is not dispatch's (the ModelQueue's push of each create to its target, and the
embedding read and base64 of that push); everything else is the background column. Samples weigh the gap to the
previous sample, capped at the sampling period (${interval} µs here, the median gap with idle pauses left out; workerd
samples only while the isolate runs). Frames are mapped through the bundle's source map to their package: ours
(edge/src, shared/src), hono, zod, other packages, wrangler/miniflare shims (the facade and the Durable Object wrapper
wrangler adds), runtime (V8 builtins, GC, workerd's APIs and node-compat JS such as console's formatter); these columns
split the whole isolate CPU. "In DOs" is CPU under a Durable Object method (KeyLimiter, PredictionIndex,
PredictionObject, ModelQueue, and their storage helper), which Cloudflare bills to the object, not to the request's CPU
limit; **"worker (not DO)" is what the request's own invocation spends, the figure the targets are on**. "Of which DO
calls (caller side)" is the worker's own time on the statements that call a Durable Object stub (found through the
profile's line ticks and the source map): locally that is mostly workerd opening a *new* object's SQLite storage
inside the caller's call (about 1.2 ms for each new PredictionObject, and as much for a model's first ModelQueue; moved
to a \`get()\` with no argument, the same ticks followed it, so it is not argument serialization; a call to an object
that is already open costs about 0.02 ms there). A deployed object starts in its own isolate, so "worker less DO
calls" is the closer estimate of a deployed request's CPU; both are shown. "Logging" is CPU under edge/src/log.ts
(JSON.stringify of the line, console.log and the inspector's copy of it for wrangler's relay). Means and medians per
request are both given: V8 samples on wall-clock ticks, so time the isolate's thread spends preempted by other
processes counts as CPU of whatever it was running; on this shared machine (load average ${loadavg()[0].toFixed(1)} on
${cpus().length} cores at the end of the run) means are inflated by it and the median is the steadier number. Compare
rows of runs made back to back, as ratios.

${table(results)}

Targets (worker (not DO) CPU per request):

${targets(results)}
${
  before
    ? `
Before -> after (the same bench, back to back, on the previous code: compiled tokenizer format 1, whose merge-rank
index was built on each isolate's first load of a tokenizer):

${comparison(before, results)}
`
    : ''
}${NOTES}`;
}
