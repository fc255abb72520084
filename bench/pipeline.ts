// Bench: the denoising loop's own cost (time per step against time inside onnxruntime's run, in wall and CPU
// time, cold and steady), peak RSS, and 512x512 generations, on the embedded default model.
import { ensureDefaultModel } from '../gpu-runner/src/default-model/write-model.ts';
import { guidedStepCount } from '../gpu-runner/src/pipeline/denoise.ts';
import { StableDiffusionPipeline } from '../gpu-runner/src/pipeline/pipeline.ts';
import type { GenerateRequest, GenerateResult } from '../gpu-runner/src/pipeline/types.ts';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const fmt = (x: number, d = 2): string => x.toFixed(d);
const pct = (x: number): string => `${fmt(x * 100)} %`;

/** Loop overhead of some generations, each way. */
interface Overhead {
  steps: number;
  medianStepMs: number;
  medianRunMs: number;
  /** median(wall - run) / median(wall): robust to the odd step preempted by another process. */
  wallMedian: number;
  /** (sum wall - sum run) / sum wall: every stall counts, ours or not. */
  wallTotal: number;
  /** (loop CPU - CPU inside run) / loop CPU, process CPU time: stolen time does not count, our own work does. */
  cpuTotal: number;
  medianOverheadUs: number;
}

function overhead(results: GenerateResult[]): Overhead {
  const wall = results.flatMap((r) => r.timings.stepWallMs);
  const run = results.flatMap((r) => r.timings.stepRunMs);
  const loopCpu = sum(results.map((r) => r.timings.unetCpuMs));
  const runCpu = sum(results.map((r) => r.timings.unetRunCpuMs));
  const diff = wall.map((w, i) => w - run[i]);
  return {
    steps: wall.length,
    medianStepMs: median(wall),
    medianRunMs: median(run),
    wallMedian: median(diff) / median(wall),
    wallTotal: (sum(wall) - sum(run)) / sum(wall),
    cpuTotal: (loopCpu - runCpu) / loopCpu,
    medianOverheadUs: median(diff) * 1000,
  };
}

async function generations(
  pipe: StableDiffusionPipeline,
  base: GenerateRequest,
  count: number,
  firstSeed: number,
): Promise<GenerateResult[]> {
  const out: GenerateResult[] = [];
  for (let i = 0; i < count; i++) out.push(await pipe.generate({ ...base, seed: firstSeed + i }));
  return out;
}

function phases(r: GenerateResult): string {
  const t = r.timings;
  return `${fmt(t.totalMs / 1000)} s (${fmt(t.textEncoderMs, 0)} / ${fmt(t.unetMs, 0)} / ${fmt(t.vaeMs, 0)} ms) | ${fmt(t.totalCpuMs / 1000)} s (loop ${fmt(t.unetCpuMs, 0)} / VAE ${fmt(t.vaeCpuMs, 0)} ms)`;
}

export async function run(): Promise<{ title: string; markdown: string }> {
  const dir = await ensureDefaultModel();
  const threads = 2;
  const steadyRuns = 10;
  const base: GenerateRequest = {
    prompt: 'a lighthouse at dusk, oil painting',
    width: 64,
    height: 64,
    steps: 20,
    guidanceScale: 7.5,
    // Guided on every step: the loop-overhead rows measure the batch-2 loop (the model's own default guides half).
    guidanceEnd: 1,
    seed: 1,
  };

  // Two intra-op threads (= the cores here): the production setting. One thread: the same loop with exact CPU
  // accounting, since the only busy thread is the one that calls run (a spinning pool thread's CPU time is
  // sampled at scheduler ticks, which smears it across the run boundary).
  const rows: string[] = [];
  let scheduler = '';
  let big: { cold: GenerateResult; steady: GenerateResult } | null = null;
  const guidanceEndRows: string[] = [];
  // Last: two threads that block instead of spinning when idle (SessionConfig.allowSpinning false).
  for (const [intraOp, allowSpinning] of [
    [threads, true],
    [1, true],
    [threads, false],
  ] as const) {
    const pipe = await StableDiffusionPipeline.load(dir, {
      intraOpNumThreads: intraOp,
      interOpNumThreads: 1,
      measureCpuTime: true,
      allowSpinning,
    });
    try {
      const cold = overhead(await generations(pipe, base, 1, 0)); // fresh sessions, V8 not yet optimized
      const steady = overhead(await generations(pipe, base, steadyRuns, 1)); // after that warm-up generation
      for (const [label, o] of [
        ['cold (first generation after load)', cold],
        [`steady (${steadyRuns} generations after 1 warm-up)`, steady],
      ] as const) {
        rows.push(
          `| ${intraOp}${allowSpinning ? '' : ', no spinning'} | ${label} | ${o.steps} | ${fmt(o.medianStepMs, 3)} / ${fmt(o.medianRunMs, 3)} | ${fmt(o.medianOverheadUs, 1)} | ${pct(o.wallMedian)} | ${pct(o.wallTotal)} | ${pct(o.cpuTotal)} |`,
        );
      }
      if (intraOp === threads && allowSpinning) {
        const request = { ...base, width: 512, height: 512 };
        const first = await pipe.generate(request); // first run of the sessions at this size
        big = { cold: first, steady: await pipe.generate({ ...request, seed: 2 }) };
        scheduler = first.scheduler;
        // What guidance_end saves: the steps after it run the cond half alone. Interleaved, so drift hits both alike.
        const runs = [1, 0.5].map((end) => ({ end, loopMs: [] as number[] }));
        for (let k = 0; k < 3; k++) {
          for (const r of runs) {
            r.loopMs.push((await pipe.generate({ ...request, guidanceEnd: r.end, seed: 3 + k })).timings.unetMs);
          }
        }
        const full = median(runs[0].loopMs);
        for (const { end, loopMs } of runs) {
          const m = median(loopMs);
          guidanceEndRows.push(`| ${end} | ${guidedStepCount(request.steps, end)} | ${fmt(m / 1000)} s | ${fmt(m / full, 3)} |`);
        }
      }
    } finally {
      await pipe.release();
    }
  }
  if (!big) throw new Error('512x512 generation did not run');
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  const bigOverhead = overhead([big.steady]);

  const markdown = [
    `Embedded default model on onnxruntime-node CPU, scheduler ${scheduler}, 20 steps, guidance 7.5 (U-Net batch 2).`,
    'Wall time is what a caller waits; CPU time is process CPU (user + system, all threads), which time taken by',
    'other processes on a shared machine does not inflate. "Inside run" is the span of onnxruntime\'s',
    '`InferenceSession.run` promise; the overhead is everything else in a step: scaling, the CFG mix, the scheduler step.',
    '',
    '### Denoising loop overhead at 64x64 (target: at most 3 %)',
    '',
    '| intra-op threads | generations | steps | median step / median run, wall ms | median overhead, µs | wall, median step | wall, total | CPU, total |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    '### 512x512, 20 steps, 2 intra-op threads',
    '',
    '| generation | wall: total (text / loop / VAE) | CPU: total (loop / VAE) |',
    '| --- | --- | --- |',
    `| cold (first at this size) | ${phases(big.cold)} |`,
    `| steady (second) | ${phases(big.steady)} |`,
    '',
    `Loop overhead of the steady 512x512 generation: ${pct(bigOverhead.wallTotal)} wall, ${pct(bigOverhead.cpuTotal)} CPU.`,
    '',
    '### guidance_end at 512x512, 20 steps, 2 intra-op threads (median of 3 each, interleaved)',
    '',
    "After guidance ends the U-Net runs on the cond half alone (batch 1 instead of 2). 0.5 is the embedded model's default.",
    '',
    '| guidance_end | guided steps | denoising loop, wall | ratio to 1 |',
    '| ---: | ---: | ---: | ---: |',
    ...guidanceEndRows,
    '',
    `Peak RSS (process.resourceUsage().maxRSS, whole bench process): ${fmt(maxRssMb, 0)} MB.`,
    '',
    'Reading the table: with one thread the CPU column is exact and shows our own cost. With two threads on a busy',
    '2-core machine the wall columns also hold time the main thread waits for a core after run returns, partly to',
    "onnxruntime's own idle pool thread spinning; the no-spinning row shows how much of it that is.",
    '',
  ].join('\n');
  return { title: 'Pipeline: denoising loop overhead, memory, 512x512', markdown };
}

// Standalone: `npx tsx bench/pipeline.ts`.
if (import.meta.url === `file://${process.argv[1]}`) {
  run().then((r) => process.stdout.write(`## ${r.title}\n\n${r.markdown}`));
}
