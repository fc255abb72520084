// The edge's configuration of the embedded model (edge/wrangler.jsonc MODELS) says what the model's own files say:
// the edge judges sizes before the runner sees them, so a retrained model with another U-Net must update both.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MODEL_DIR, DEFAULT_MODEL_VERSION } from '@sd/gpu-runner/default-model/write-model';
import { sideMultipleOf } from '@sd/gpu-runner/pipeline/request-checks';
import { describe, expect, it } from 'vitest';
import { EDGE_CONFIG } from '../scripts/stack/edge-process.ts';
import { parseJsonc } from '../scripts/stack/jsonc.ts';

describe("the edge's embedded model entry", () => {
  it("has the U-Net's native size and the side multiple its runner checks", () => {
    const config = parseJsonc(readFileSync(EDGE_CONFIG, 'utf8')) as { vars: { MODELS: string } };
    const models = JSON.parse(config.vars.MODELS) as Array<{ version: string; limits?: Record<string, number> }>;
    const entry = models.find((m) => m.version === DEFAULT_MODEL_VERSION);
    const unet = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, 'unet', 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(entry?.limits).toMatchObject({ nativeSide: (unet.sample_size as number) * 8, sideMultiple: sideMultipleOf(unet) });
  });
});
