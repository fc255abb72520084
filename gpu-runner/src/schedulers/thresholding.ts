// clip_sample and dynamic thresholding of the predicted x0 (Imagen, Saharia et al. 2022), shared by the
// DDPM-family schedulers that have those config keys.
import type { SchedulerConfig } from './scheduler.ts';
import { readBoolean, readNumber } from './scheduler-config.ts';

export interface ThresholdConfig {
  thresholding: boolean;
  dynamicThresholdingRatio: number;
  sampleMaxValue: number;
  clipSample: boolean;
  clipSampleRange: number;
}

export function readThresholdConfig(config: SchedulerConfig, defaults: { clipSample: boolean }): ThresholdConfig {
  return {
    thresholding: readBoolean(config, 'thresholding', false),
    dynamicThresholdingRatio: readNumber(config, 'dynamic_thresholding_ratio', 0.995),
    sampleMaxValue: readNumber(config, 'sample_max_value', 1),
    clipSample: readBoolean(config, 'clip_sample', defaults.clipSample),
    clipSampleRange: readNumber(config, 'clip_sample_range', 1),
  };
}

/** In place: dynamic thresholding when enabled, else clipping to ±clip_sample_range when enabled. */
export function clipOrThreshold(x: Float32Array, cfg: ThresholdConfig, batch: number): void {
  if (cfg.thresholding) {
    dynamicThreshold(x, cfg.dynamicThresholdingRatio, cfg.sampleMaxValue, batch);
  } else if (cfg.clipSample) {
    const r = cfg.clipSampleRange;
    for (let i = 0; i < x.length; i++) x[i] = Math.min(r, Math.max(-r, x[i]));
  }
}

/** Per batch item: s = quantile(|x|, ratio) clamped to [1, max]; x = clamp(x, -s, s) / s. */
export function dynamicThreshold(x: Float32Array, ratio: number, maxValue: number, batch: number): void {
  const per = x.length / batch;
  for (let b = 0; b < batch; b++) {
    const item = x.subarray(b * per, (b + 1) * per);
    const sorted = Float64Array.from(item, Math.abs).sort();
    // torch.quantile's default linear interpolation
    const pos = ratio * (per - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, per - 1);
    const q = sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    const s = Math.min(maxValue, Math.max(1, q));
    for (let i = 0; i < per; i++) item[i] = Math.min(s, Math.max(-s, item[i])) / s;
  }
}
