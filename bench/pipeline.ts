// Bench: the denoising loop's own cost (wall time per step vs time inside onnxruntime's run), peak RSS,
// and a 512x512 generation, on the embedded default model.
import { ensureDefaultModel } from '../gpu-runner/src/default-model/write-model.ts';
import { StableDiffusionPipeline } from '../gpu-runner/src/pipeline/pipeline.ts';
import type { GenerateRequest } from '../gpu-runner/src/pipeline/types.ts';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const fmt = (x: number, d = 2): string => x.toFixed(d);

export async function run(): Promise<{ title: string; markdown: string }> {
  const dir = await ensureDefaultModel();
  const threads = 2;
  const pipe = await StableDiffusionPipeline.load(dir, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  try {
    const base: GenerateRequest = { prompt: 'a lighthouse at dusk, oil painting', width: 64, height: 64, steps: 20, guidanceScale: 7.5, seed: 1 };
    await pipe.generate(base); // warm-up: onnxruntime's first-run allocations and V8's JIT of the loop and scheduler

    const runs = 5;
    const wall: number[] = [];
    const inside: number[] = [];
    for (let r = 0; r < runs; r++) {
      const res = await pipe.generate({ ...base, seed: r });
      wall.push(...res.timings.stepWallMs);
      inside.push(...res.timings.stepRunMs);
    }
    const overhead = (sum(wall) - sum(inside)) / sum(wall);
    // Per-step overhead's median: robust to GC pauses and to other processes on a shared machine.
    const medianOverhead = median(wall.map((w, i) => w - inside[i])) / median(wall);

    const big = await pipe.generate({ ...base, width: 512, height: 512 });
    const bigOverhead = (sum(big.timings.stepWallMs) - sum(big.timings.stepRunMs)) / sum(big.timings.stepWallMs);
    const maxRssMb = process.resourceUsage().maxRSS / 1024;

    const rows = [
      '| measurement | value |',
      '| --- | --- |',
      `| 64x64, 20 steps, CFG (U-Net batch 2), ${runs} runs: median wall time per step | ${fmt(median(wall), 3)} ms |`,
      `| same: median time inside onnxruntime run per step | ${fmt(median(inside), 3)} ms |`,
      `| loop overhead, median step: median(wall - run) / median(wall) | ${fmt(medianOverhead * 100)} % (target <= 3 %) |`,
      `| loop overhead, total: (sum wall - sum run) / sum wall over ${wall.length} U-Net calls | ${fmt(overhead * 100)} % |`,
      `| 512x512, 20 steps: total generation | ${fmt(big.timings.totalMs / 1000)} s |`,
      `| 512x512: text encoder / denoise loop / VAE | ${fmt(big.timings.textEncoderMs, 0)} / ${fmt(big.timings.unetMs, 0)} / ${fmt(big.timings.vaeMs, 0)} ms |`,
      `| 512x512: loop overhead | ${fmt(bigOverhead * 100)} % |`,
      `| peak RSS (process.resourceUsage().maxRSS) | ${fmt(maxRssMb, 0)} MB |`,
    ];
    const markdown = `Embedded default model on onnxruntime-node CPU, intraOpNumThreads ${threads}, scheduler ${big.scheduler}.\n\n${rows.join('\n')}\n`;
    return { title: 'Pipeline: denoising loop overhead, memory, 512x512', markdown };
  } finally {
    await pipe.release();
  }
}

// Standalone: `npx tsx bench/pipeline.ts`.
if (import.meta.url === `file://${process.argv[1]}`) {
  run().then((r) => process.stdout.write(`## ${r.title}\n\n${r.markdown}`));
}
