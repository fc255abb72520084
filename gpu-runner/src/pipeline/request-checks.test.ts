import { describe, expect, it } from 'vitest';
import { sideMultipleOf, sideProblem } from './request-checks.ts';

describe('the sides a U-Net takes', () => {
  it('are multiples of 8 times 2 per upsampler (one fewer than the up blocks): 64 for SD 1.x, 16 for two blocks', () => {
    const sd15 = { up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'] };
    expect(sideMultipleOf(sd15)).toBe(64);
    expect(sideMultipleOf({ block_out_channels: [32, 64] })).toBe(16);
    // Without a config there is nothing to tell: the VAE's own 8.
    expect(sideMultipleOf(null)).toBe(8);
  });

  it('refuses a side the U-Net cannot take, naming the multiple and the value', () => {
    expect(sideProblem('width', 96, 16)).toBeNull();
    expect(sideProblem('width', 88, 16)).toBe(
      'width must be a multiple of 16 between 64 and 2048 for this model (its U-Net needs it), got 88',
    );
    expect(sideProblem('height', 100)).toBe('height must be a multiple of 8 between 64 and 2048, got 100');
    expect(sideProblem('height', 4096, 64)).toMatch(/between 64 and 2048 .*got 4096/);
  });
});
