// The read-only AUTOMATIC1111 listings (sd-models, options, schedulers, and the empty ones its clients probe on
// connect) in A1111's response shapes, built from the edge's configuration.
import type { EdgeConfig, ModelConfig } from '../../config.ts';
import { modelTitle } from './a1111-request.ts';
import { A1111_SCHEDULES } from './a1111-samplers.ts';

export function sdModels(config: EdgeConfig) {
  return config.models.map((m: ModelConfig) => ({
    title: modelTitle(m),
    model_name: m.id,
    hash: m.version,
    sha256: null,
    filename: m.id,
    config: null,
  }));
}

/** The settings a client reads: the default model and its clip skip, and the fixed output settings. */
export function sdOptions(config: EdgeConfig): Record<string, unknown> {
  const model = config.models[0];
  return {
    sd_model_checkpoint: modelTitle(model),
    sd_checkpoint_hash: model.version,
    CLIP_stop_at_last_layers: model.clipSkip,
    sd_vae: 'Automatic',
    samples_format: 'png',
    eta_ancestral: 1,
    eta_noise_seed_delta: 0,
    randn_source: 'CPU',
  };
}

export function sdSchedulers() {
  return A1111_SCHEDULES.map((s) => ({
    name: s.name,
    label: s.label,
    aliases: null,
    default_rho: s.default_rho,
    need_inner_model: false,
  }));
}

/** GET /sdapi/v1/upscalers: only A1111's "None" entry (there are no upscalers), so clients listing them still work. */
export const UPSCALERS = [{ name: 'None', model_name: null, model_path: null, model_url: null, scale: 4 }];
