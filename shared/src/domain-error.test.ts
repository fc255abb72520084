import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DomainError, ERROR_STATUS, invalidFromZod, invalidInput } from './domain-error.ts';
import { ErrorBodySchema } from './schemas/errors.ts';

describe('the error contract', () => {
  it('gives every code one status, and a body both Replicate and OpenAI clients read', () => {
    const err = new DomainError('not_ready', 'the model is still loading');
    expect(err.status).toBe(503);
    const body = ErrorBodySchema.parse(err.body());
    expect(body).toMatchObject({ status: 503, detail: 'the model is still loading', error: { code: 'not_ready' } });
    expect(new Set(Object.values(ERROR_STATUS).map((s) => s >= 400 && s < 600))).toEqual(new Set([true]));
  });

  it('names the field of an invalid input, once per distinct problem', () => {
    expect(invalidInput('width', 'width must be a multiple of 8').body().error.param).toBe('width');
    const schema = z.object({ steps: z.number().int('steps must be an integer').min(1, 'steps must be an integer') });
    const err = invalidFromZod(schema.safeParse({ steps: 0.5 }).error as z.ZodError, 'input');
    expect(err.status).toBe(422);
    expect(err.issues).toEqual([{ field: 'input.steps', message: 'steps must be an integer' }]);
  });
});
