// Spawns `npm run generate`'s script as a user would: the embedded default model, files on disk, exit codes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');
const script = join(root, 'gpu-runner', 'src', 'cli', 'generate.ts');
const work = mkdtempSync(join(tmpdir(), 'generate-cli-'));
// A private cache: the CLI writes the embedded model on first use, as on a fresh machine.
const env = { ...process.env, SD_MODEL_CACHE: join(work, 'models') };

function generate(...args: string[]) {
  const r = spawnSync(tsx, [script, ...args], { cwd: root, env, encoding: 'utf8', timeout: 170_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('generate CLI', () => {
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('writes a PNG with the embedded model and prints the seed', async () => {
    const out = join(work, 'a.png');
    const r = generate(
      '--prompt',
      'a lighthouse at dusk',
      '--width',
      '64',
      '--height',
      '64',
      '--steps',
      '3',
      '--seed',
      '42',
      '--out',
      out,
    );
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/seed: 42/);
    const meta = await sharp(readFileSync(out)).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', 64, 64, 3]);
  });

  it('writes x-0/x-1 for two outputs, raw float32 NCHW, and is reproducible from init latents', async () => {
    const out = join(work, 'b.webp');
    const raw = join(work, 'b.f32');
    const latents = new Float32Array(2 * 4 * 8 * 8).map((_, i) => Math.sin(i));
    const latentsFile = join(work, 'noise.f32');
    writeFileSync(latentsFile, Buffer.from(latents.buffer));
    const args = [
      '--prompt',
      'x',
      '--width',
      '64',
      '--height',
      '64',
      '--steps',
      '2',
      '--num-outputs',
      '2',
      '--init-latents',
      latentsFile,
      '--scheduler',
      'ddim',
    ];
    const r = generate(...args, '--format', 'webp', '--quality', '50', '--out', out, '--raw-out', raw);
    expect(r.code).toBe(0);
    expect(existsSync(join(work, 'b-0.webp')) && existsSync(join(work, 'b-1.webp'))).toBe(true);
    expect((await sharp(readFileSync(join(work, 'b-0.webp'))).metadata()).format).toBe('webp');
    const rawBytes = readFileSync(raw);
    expect(rawBytes.byteLength).toBe(2 * 3 * 64 * 64 * 4);
    // The same init latents with another seed give the same pixels: the seed only feeds the noise draw.
    const raw2 = join(work, 'c.f32');
    expect(generate(...args, '--seed', '999', '--out', join(work, 'c.png'), '--raw-out', raw2).code).toBe(0);
    expect(readFileSync(raw2).equals(rawBytes)).toBe(true);
  });

  it('--help lists every flag with its default and exits 0', () => {
    const r = generate('--help');
    expect(r.code).toBe(0);
    for (const flag of [
      '--prompt',
      '--out',
      '--steps',
      '--guidance',
      '--scheduler',
      '--seed',
      '--format',
      '--quality',
      '--raw-out',
    ]) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toMatch(/--steps N\s+.*\(default: 20\)/);
    expect(r.stdout).toMatch(/--format png\|webp\|jpeg\s+.*\(default: --out's extension, else png\)/);
  });

  it.each([
    [['--prompt', 'x', '--out', 'o.png', '--width', '100'], /--width must be a multiple of 8 between 64 and 2048, got 100/],
    [['--prompt', 'x', '--out', 'o.png', '--steps', '0'], /--steps must be an integer between 1 and 150, got 0/],
    [['--prompt', 'x', '--out', 'o.png', '--guidance', '31'], /--guidance must be a number between 0 and 30, got 31/],
    [['--prompt', 'x', '--out', 'o.png', '--seed', '-1'], /--seed must be an integer between 0 and 4294967295, got -1/],
    [['--prompt', 'x', '--out', 'o.png', '--num-outputs', '5'], /--num-outputs must be an integer between 1 and 4, got 5/],
    [
      ['--prompt', 'x', '--out', 'o.png', '--image', 'i.png', '--strength', '1.5'],
      /--strength must be a number between 0 and 1, got 1.5/,
    ],
    [['--out', 'o.png'], /--prompt is required/],
    [['--prompt', 'x', '--format', 'webp', '--out', 'o.png'], /--format webp does not match --out o.png/],
    [['--prompt', 'x', '--out', 'o.png', '--bogus', '1'], /bogus/],
  ])('exits 2 with one line for %j', (args, message) => {
    const r = generate(...args);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });
});
