// `npm run bench -- dispatch`: bursts of predictions submitted at once to the local stack with 2 runners (one slot and
// one onnxruntime thread each), measuring how busy the GPUs (here: CPU runners) are kept: utilization
// (sum of predict_time / (runners x makespan)), makespan over ideal, wait p50/p99, start-order inversions, and the
// time each lease costs between two predictions on a runner. `SD_BENCH_DISPATCH_PREVIOUS` may hold a JSON file of the
// same bench run on the previous design (the commit before leased dispatch) to print beside it as ratios.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { type LocalStack, startLocalStack } from '../scripts/local-stack.ts';
import type { BenchResult } from './run.ts';

interface Workload {
  name: string;
  count: number;
  width: number;
  steps: number;
}

const WORKLOADS: Workload[] = [
  { name: '40 x 256x256, 10 steps', count: 40, width: 256, steps: 10 },
  { name: '200 x 64x64, 4 steps', count: 200, width: 64, steps: 4 },
];
const RUNNERS = 2;

interface Seen {
  id: string;
  order: number;
  createdMs: number;
  startedMs: number;
  completedMs: number;
  predictSeconds: number;
  status: string;
}

export interface WorkloadFigures {
  workload: string;
  succeeded: number;
  count: number;
  utilization: number;
  makespanOverIdeal: number;
  makespanSeconds: number;
  waitP50Seconds: number;
  waitP99Seconds: number;
  inversions: number;
  overheadPerLeaseMs: number;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

async function call(stack: LocalStack, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${stack.edgeUrl}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${path} answered ${res.status}: ${JSON.stringify(json).slice(0, 300)}`);
  return json;
}

async function burst(stack: LocalStack, w: Workload): Promise<WorkloadFigures> {
  const input = (i: number) => ({
    prompt: `burst ${w.name} ${i} ${Date.now()}`,
    width: w.width,
    height: w.width,
    num_inference_steps: w.steps,
  });
  // Created one after another as fast as the edge answers: creation order is the order the line must keep.
  const ids: string[] = [];
  for (let i = 0; i < w.count; i++)
    ids.push(String((await call(stack, '/v1/predictions', { version: stack.model.ref, input: input(i) })).id));
  const done = new Map<string, Seen>();
  const deadline = Date.now() + 30 * 60_000;
  while (done.size < ids.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    const pending = ids.filter((id) => !done.has(id));
    for (let i = 0; i < pending.length; i += 20) {
      await Promise.all(
        pending.slice(i, i + 20).map(async (id) => {
          const p = await call(stack, `/v1/predictions/${id}`);
          if (!['succeeded', 'failed', 'canceled'].includes(String(p.status))) return;
          const metrics = (p.metrics ?? {}) as Record<string, number>;
          done.set(id, {
            id,
            order: ids.indexOf(id),
            createdMs: Date.parse(String(p.created_at)),
            startedMs: Date.parse(String(p.started_at ?? p.completed_at)),
            completedMs: Date.parse(String(p.completed_at)),
            predictSeconds: metrics.predict_time ?? 0,
            status: String(p.status),
          });
        }),
      );
    }
  }
  const seen = [...done.values()].sort((a, b) => a.createdMs - b.createdMs || a.order - b.order);
  const first = Math.min(...seen.map((s) => s.createdMs));
  const last = Math.max(...seen.map((s) => s.completedMs));
  const makespan = (last - first) / 1000;
  const work = seen.reduce((sum, s) => sum + s.predictSeconds, 0);
  const waits = seen.map((s) => (s.startedMs - s.createdMs) / 1000).sort((a, b) => a - b);
  let inversions = 0;
  for (let i = 0; i < seen.length; i++) {
    // Created in the same millisecond: no order to keep between them.
    for (let j = i + 1; j < seen.length; j++)
      if (seen[j].createdMs > seen[i].createdMs && seen[j].startedMs < seen[i].startedMs) inversions++;
  }
  return {
    workload: w.name,
    succeeded: seen.filter((s) => s.status === 'succeeded').length,
    count: w.count,
    utilization: work / (RUNNERS * makespan),
    makespanOverIdeal: makespan / (work / RUNNERS),
    makespanSeconds: makespan,
    waitP50Seconds: quantile(waits, 0.5),
    waitP99Seconds: quantile(waits, 0.99),
    inversions,
    // What the runners did besides predicting, spread over the predictions: lease, input, upload, report.
    overheadPerLeaseMs: ((RUNNERS * makespan - work) / seen.length) * 1000,
  };
}

export async function measure(): Promise<WorkloadFigures[]> {
  const stack = await startLocalStack({
    runnerCount: RUNNERS,
    secretKey: { ratePerMinute: 100_000, maxInFlight: 1000 },
    runnerEnv: { SLOTS: '1', ORT_INTRA_OP_THREADS: '1', PROGRESS_THROTTLE_MS: '1000', LOG_LEVEL: 'warn' },
    edgeVars: { LOG_LEVEL: 'warn' },
  });
  try {
    // Warm both runners at both sizes, so first-run session costs stay out of the figures.
    for (const w of WORKLOADS) await burst(stack, { ...w, count: 4 });
    const figures: WorkloadFigures[] = [];
    for (const w of WORKLOADS) figures.push(await burst(stack, w));
    return figures;
  } finally {
    await stack.stop();
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

export async function run(): Promise<BenchResult> {
  const figures = await measure();
  const previousFile = process.env.SD_BENCH_DISPATCH_PREVIOUS;
  const previous: WorkloadFigures[] =
    previousFile && existsSync(previousFile) ? JSON.parse(readFileSync(previousFile, 'utf8')) : [];
  if (process.env.SD_BENCH_DISPATCH_OUT) writeFileSync(process.env.SD_BENCH_DISPATCH_OUT, JSON.stringify(figures, null, 2));
  const rows = figures.map((f) => {
    const p = previous.find((x) => x.workload === f.workload);
    const vs = (now: number, before: number | undefined, digits = 2) =>
      before === undefined ? '' : ` (before ${before.toFixed(digits)}, ${(now / before).toFixed(2)}x)`;
    return `| ${f.workload} | ${f.succeeded}/${f.count} | ${pct(f.utilization)}${p ? ` (before ${pct(p.utilization)})` : ''} | ${f.makespanOverIdeal.toFixed(2)}${vs(f.makespanOverIdeal, p?.makespanOverIdeal)} | ${f.waitP50Seconds.toFixed(1)} / ${f.waitP99Seconds.toFixed(1)} s${p ? ` (before ${p.waitP50Seconds.toFixed(1)} / ${p.waitP99Seconds.toFixed(1)})` : ''} | ${f.inversions}${p ? ` (before ${p.inversions})` : ''} | ${f.overheadPerLeaseMs.toFixed(0)} ms${p ? ` (before ${p.overheadPerLeaseMs.toFixed(0)})` : ''} |`;
  });
  return {
    title: 'Dispatch: bursts on 2 runners (leased pull dispatch)',
    markdown: [
      'The local stack (s3rver, 2 runners with SLOTS=1 and one onnxruntime thread each, the edge under wrangler dev),',
      'one API key, each burst submitted at once (8 creates in flight), then polled to the end; 4 per size first as warm-up.',
      'Utilization = sum of predict_time / (runners x makespan from the first create to the last completion); ideal',
      'makespan = sum of predict_time / runners; wait = started_at - created_at; inversions = pairs started out of',
      'creation order; overhead per lease = (runners x makespan - sum of predict_time) / predictions.',
      previous.length
        ? '"before": the same bench on the previous design (queue consumer pushing to runner URLs, 409 retried with backoff), same machine, commit b6610c4; its embedded model was the random-weights one, so compare utilization, ratios and overheads rather than seconds.'
        : '',
      '',
      '| burst | succeeded | runner utilization | makespan / ideal | wait p50 / p99 | start-order inversions | overhead per lease |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows,
    ].join('\n'),
  };
}
