// Spawns `npm run tokenize`'s script as a user would: JSON lines in, JSON lines out, exit codes.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { referenceDir, referencePath, referenceSkipReason } from './support/reference.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');
const script = join(root, 'scripts', 'tokenize.ts');

function tokenize(args: string[], input = '') {
  const r = spawnSync(tsx, [script, ...args], { cwd: root, input, encoding: 'utf8', timeout: 60_000 });
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  return { code: r.status, stderr: r.stderr, out: lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('tokenize CLI: arguments', () => {
  it.each([
    [['--tokenizer'], /--tokenizer needs a value/],
    [['--tokenizer', '/no/such/dir'], /has no vocab.json/],
    [['--tokenizer', '.', '--mode', 'wrap'], /--mode must be truncate or chunk, got "wrap"/],
    [['--bogus'], /unknown argument "--bogus"/],
  ])('rejects %j with one line on stderr and exit code 2', (args, message) => {
    const r = tokenize(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n').length).toBe(1);
    expect(r.out).toEqual([]);
  });
});

describe('tokenize CLI: defaults', () => {
  it('--help prints the usage and the default tokenizer on stdout and exits 0', () => {
    const r = spawnSync(tsx, [script, '--help'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm run -s tokenize -- \[--tokenizer DIR\]/);
    expect(r.stdout).toContain('gpu-runner/models/sd-embedded-v5/tokenizer');
    // Its default mode is not the API's: the help says which is which.
    expect(r.stdout).toMatch(/truncate \(.*the default\)/);
    expect(r.stdout).toMatch(/chunk \(AUTOMATIC1111:[^)]*what the API does/);
    expect(r.stderr).toBe('');
  });

  it("tokenizes with the embedded model's tokenizer when --tokenizer is not given", () => {
    const dir = join(root, 'gpu-runner', 'models', 'sd-embedded-v5', 'tokenizer');
    const input = '"a red circle on a blue background"\n"(red:1.3) circle"\n';
    const byDefault = tokenize([], input);
    expect(byDefault.code).toBe(0);
    expect(byDefault.out).toEqual(tokenize(['--tokenizer', dir], input).out);
    expect(byDefault.out[0].ids).toHaveLength(77);
    // The weight syntax is parsed: "red" carries 1.3 in the second prompt.
    expect((byDefault.out[1].weights as number[]).some((w) => Math.abs(w - 1.3) < 1e-6)).toBe(true);
  });
});

describe.skipIf(!referenceDir)(`tokenize CLI on the reference tokenizer${referenceSkipReason}`, () => {
  const dir = referenceDir ? referencePath('tokenizer') : '';

  it('prints the golden 77 ids of every reference prompt with --no-weights (exact)', () => {
    const cases = readFileSync(referencePath('tokenizer_cases.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { prompt: string; ids: number[]; raw_bpe: number[] });
    const r = tokenize(['--tokenizer', dir, '--no-weights'], `${cases.map((c) => JSON.stringify(c.prompt)).join('\n')}\n`);
    expect(r.code).toBe(0);
    expect(r.out.length).toBe(cases.length);
    r.out.forEach((o, i) => {
      expect(o.ids, cases[i].prompt).toEqual(cases[i].ids);
      expect(o.tokens).toBe(cases[i].raw_bpe.length);
      expect(o.truncated).toBe(cases[i].raw_bpe.length > 75);
      expect(o.weights).toEqual(Array(77).fill(1));
    });
  });

  it('gives windows of 77 in chunk mode, with weights of the same shape', () => {
    const long = Array.from({ length: 100 }, (_, i) => `word${i % 10}`).join(' ');
    const r = tokenize(['--tokenizer', dir, '--mode=chunk'], `${JSON.stringify(long)}\n"(cat:1.5) BREAK dog"\n`);
    expect(r.code).toBe(0);
    const [a, b] = r.out as Array<{ ids: number[][]; weights: number[][]; tokens: number }>;
    expect(a.ids.length).toBe(Math.ceil(a.tokens / 75));
    expect(a.ids.every((w) => w.length === 77 && w[0] === 49406)).toBe(true);
    expect(a.weights.map((w) => w.length)).toEqual(a.ids.map(() => 77));
    expect(b.ids.length).toBe(2);
    expect(b.weights[0].slice(0, 3)).toEqual([1, 1.5, 1]);
  });

  it('answers a bad line with an error object and goes on', () => {
    const r = tokenize(['--tokenizer', dir], '"a cat"\nnot json\n{"prompt": 1}\n\n"a dog"\n');
    expect(r.code).toBe(0);
    expect(r.out.length).toBe(4);
    expect(r.out[1]).toEqual({ error: expect.stringMatching(/line 2 must be a JSON string, got invalid JSON/), line: 2 });
    expect(r.out[2]).toEqual({ error: 'line 3 must be a JSON string, got object', line: 3 });
    expect((r.out[3].ids as number[]).length).toBe(77);
  });
});
