// Seeded fuzzing for the hardening tests of the runner (Node) and the edge (workerd): the generator, the bad values,
// and the "refused by name, nothing leaked" checks. Pure TS with no node: imports, so both runtimes can load it.
import { type ErrorBody, ErrorBodySchema } from '@sd/shared/schemas/errors';
import { expect } from 'vitest';

/** mulberry32: a small seeded generator in [0, 1), so every run sends the same requests. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

/** 1 to `maxLength` symbols of `alphabet`, joined by a space, nothing or a comma. */
export const randomText = (r: () => number, alphabet: readonly string[], maxLength: number): string =>
  Array.from({ length: 1 + Math.floor(r() * maxLength) }, () => pick(r, alphabet)).join(pick(r, [' ', '', ',']));

/** A response read once: its status, its text, and the text parsed as JSON (null when it is not JSON). */
export interface Reply {
  status: number;
  text: string;
  body: unknown;
}

export async function readReply(res: Response): Promise<Reply> {
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  return { status: res.status, text, body };
}

/** Whether the error body names `field` or one of its children among its issues. */
export const namesField = (body: ErrorBody, field: string): boolean =>
  (body.error.issues ?? []).some((i) => i.field === field || i.field.startsWith(`${field}.`));

/** The checks for a service that holds `secrets`: nothing it answers may carry a stack frame, a source path or one of them. */
export function refusalChecks(secrets: readonly string[]) {
  function expectNoLeak(reply: Reply): void {
    for (const marker of ['    at ', '.ts:', 'node_modules', ...secrets])
      expect(reply.text, `leaked ${JSON.stringify(marker)}`).not.toContain(marker);
  }

  /** A 4xx in the shared error shape whose issues (and message) name every field in `fields`. */
  function expectRefused(reply: Reply, status: number | number[], fields: string[] = []): ErrorBody {
    const allowed = Array.isArray(status) ? status : [status];
    expect(allowed, reply.text.slice(0, 500)).toContain(reply.status);
    expectNoLeak(reply);
    const body = ErrorBodySchema.parse(reply.body);
    expect(body.status).toBe(reply.status);
    for (const field of fields) {
      expect(namesField(body, field), `${field} not named in ${reply.text.slice(0, 500)}`).toBe(true);
      const leaf = field === '(body)' ? 'body' : (field.split('.').at(-1) as string);
      expect(body.error.message, `message does not name ${leaf}`).toContain(leaf);
    }
    return body;
  }

  return { expectNoLeak, expectRefused };
}

/** Raw JSON tokens for values JSON.stringify cannot write (1e999 parses to Infinity, -0 stays negative zero). */
type Raw = { raw: string };
export const raw = (text: string): Raw => ({ raw: text });
export function toJson(v: unknown): string {
  if (v && typeof v === 'object' && 'raw' in v) return (v as Raw).raw;
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

export const INF = raw('1e999');
export const NEG_INF = raw('-1e999');
export const NEG_ZERO = raw('-0');
export const CONTROL = 'a\u0000b\u0007c\u001b[31m\u2028😀';

/** Values each public sampling field must refuse, on the edge and the runner alike (schema level, no model needed). */
export const BAD_PUBLIC_FIELDS: Record<string, unknown[]> = {
  prompt: [1, null, [], {}, true, 'x'.repeat(10_001)],
  negative_prompt: [5, false, ['a'], 'y'.repeat(10_001)],
  width: ['64', 64.5, 65, INF, NEG_ZERO, 0, 4096, null, true, [64], {}],
  height: ['64', 63.999, 8, NEG_INF, -64, 2056],
  num_inference_steps: ['2', 2.5, 0, -1, INF, 151, null],
  guidance_scale: ['7', -0.5, 31, INF, 'NaN', 'Infinity', null],
  guidance_end: ['0.5', -0.1, 1.5, INF, null],
  seed: [-1, 1.5, 4294967296, INF, '1', true, 1e308],
  num_outputs: [0, 5, 1.5, NEG_ZERO, '1'],
  strength: [-0.1, 1.5, '0.5', INF],
  output_quality: [0, 101, 50.5, '80'],
  scheduler: ['nope', '', 1, '\u0000', '😀', CONTROL],
  output_format: ['gif', 'png\u0000', 1, ''],
  prompt_mode: ['x', true],
  prompt_weighting: ['true', 1, null],
  prompt_strength: [-0.1, 1.5, '0.5', INF],
  clip_skip: [0, 13, 1.5, '2', null],
  disable_safety_checker: ['true', 1, null],
};

/**
 * `count` seeded inputs, each `base` with 1 to 3 fields of `bad` given a bad value and, three times in ten, one field
 * from `unknownNames` added; `expected` lists the fields the refusal must name.
 */
export function* badInputs(
  seed: number,
  count: number,
  base: Record<string, unknown>,
  bad: Record<string, unknown[]>,
  unknownNames: readonly string[],
): Generator<{ n: number; input: Record<string, unknown>; expected: string[] }> {
  const r = rng(seed);
  const fields = Object.keys(bad);
  for (let n = 0; n < count; n++) {
    const input: Record<string, unknown> = { ...base };
    const expected: string[] = [];
    for (let k = 1 + Math.floor(r() * 3); k > 0; k--) {
      const field = pick(r, fields);
      input[field] = pick(r, bad[field]);
      if (!expected.includes(field)) expected.push(field);
    }
    if (r() < 0.3) {
      const unknown = pick(r, unknownNames);
      input[unknown] = pick(r, [1, 'x', null, {}]);
      expected.push(unknown);
    }
    yield { n, input, expected };
  }
}
