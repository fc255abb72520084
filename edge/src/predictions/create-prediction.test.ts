import { DomainError } from '@sd/shared/domain-error';
import { DEFAULT_LIMITS } from '@sd/shared/schemas/limits';
import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../config.ts';
import { refuseUnsizedImageUrlPastBudget } from './create-prediction.ts';

const model = { limits: { ...DEFAULT_LIMITS } } as Pick<ModelConfig, 'limits'> as ModelConfig;
const tight = { ...DEFAULT_LIMITS, maxPixels: 64 * 64 };
const url = 'https://images.example/cat.png';

function refusal(input: Parameters<typeof refuseUnsizedImageUrlPastBudget>[0], limits = tight): DomainError | null {
  try {
    refuseUnsizedImageUrlPastBudget(input, model, limits);
    return null;
  } catch (err) {
    if (err instanceof DomainError) return err;
    throw err;
  }
}

describe('a host that sizes the output itself (Replicate) and a key with a pixel budget', () => {
  it('refuses an image URL without width or height, naming the missing field and the budget', () => {
    const noWidth = refusal({ image: url });
    expect(noWidth?.status).toBe(422);
    expect(noWidth?.issues?.[0].field).toBe('input.width');
    expect(noWidth?.message).toContain('4096 pixels');
    expect(refusal({ image: url, width: 64 })?.issues?.[0].field).toBe('input.height');
  });

  it('lets through a sized request, a data URI (the edge sizes it), no image, and a key without a tighter budget', () => {
    expect(refusal({ image: url, width: 64, height: 64 })).toBeNull();
    expect(refusal({ image: 'data:image/png;base64,AAAA' })).toBeNull();
    expect(refusal({})).toBeNull();
    expect(refusal({ image: url }, DEFAULT_LIMITS)).toBeNull();
  });
});
