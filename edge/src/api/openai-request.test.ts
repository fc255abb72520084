import { DomainError } from '@sd/shared/domain-error';
import { fitSize } from '@sd/shared/image-size';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config.ts';
import { editInput, generationInput, modelFor } from './openai-request.ts';

const config = parseConfig({
  MODELS: JSON.stringify([
    { id: 'sd/embedded', version: 'embedded-v1', runners: ['http://127.0.0.1:5000'] },
    { id: 'sd/turbo', version: 't1', runners: ['http://127.0.0.1:5001'] },
  ]),
  PUBLIC_BASE_URL: 'http://127.0.0.1:8787',
  RUNNER_WEBHOOK_SECRET: 'a',
  RUNNER_TOKEN: 'b',
  WEBHOOK_SIGNING_SECRET: 'c',
  TOKEN_SIGNING_SECRET: 'd',
});
const base = { prompt: 'x', n: 1, response_format: 'url' as const };

describe('OpenAI request mapping', () => {
  it('a configured model name runs that model; any other name (dall-e-3, gpt-image-1) runs the default', () => {
    expect(modelFor(config, 'sd/turbo')).toMatchObject({ model: { id: 'sd/turbo' }, mapped: false });
    expect(modelFor(config, 'dall-e-3')).toMatchObject({ model: { id: 'sd/embedded' }, mapped: true });
    expect(modelFor(config, undefined)).toMatchObject({ model: { id: 'sd/embedded' }, mapped: false });
  });

  it('quality maps to steps and style to guidance; explicit values win', () => {
    expect(generationInput({ ...base, quality: 'hd', style: 'vivid' })).toMatchObject({
      num_inference_steps: 50,
      guidance_scale: 9,
    });
    expect(generationInput({ ...base, quality: 'low' })).toMatchObject({ num_inference_steps: 15 });
    expect(generationInput({ ...base, quality: 'standard', style: 'natural' })).not.toHaveProperty('num_inference_steps');
    expect(generationInput({ ...base, quality: 'hd', num_inference_steps: 8, style: 'vivid', guidance_scale: 3 })).toMatchObject({
      num_inference_steps: 8,
      guidance_scale: 3,
    });
    expect(generationInput({ ...base, output_compression: 0, size: '256x128' })).toMatchObject({
      output_quality: 1,
      width: 256,
      height: 128,
    });
  });

  it('refuses a transparent background and streaming', () => {
    expect(() => generationInput({ ...base, background: 'transparent' })).toThrow(DomainError);
    expect(() => generationInput({ ...base, stream: true })).toThrow(/stream must be false/);
  });

  it("edits default to the image's size, fitted to the limits in multiples of 8; input_fidelity high is strength 0.5", () => {
    const limits = { minSide: 64, maxSide: 2048, maxPixels: 1 << 20 };
    expect(fitSize({ width: 1024, height: 1024 }, limits)).toEqual({ width: 1024, height: 1024 });
    expect(fitSize({ width: 2000, height: 1000 }, limits)).toEqual({ width: 1448, height: 720 });
    expect(fitSize({ width: 30, height: 30 }, limits)).toEqual({ width: 64, height: 64 });
    const input = editInput(
      { ...base, input_fidelity: 'high' },
      { image: 'data:image/png;base64,AA', imageSize: { width: 96, height: 64 } },
    );
    expect(input).toMatchObject({ width: 96, height: 64, strength: 0.5, image: 'data:image/png;base64,AA' });
    expect(input).not.toHaveProperty('mask');
  });
});
