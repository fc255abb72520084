import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BenchModules, runBenches } from './bench-report.ts';

// Two bench modules with fixed results: what is under test is where the results go, not a measurement.
const modules: BenchModules = {
  alpha: async () => ({ run: async () => ({ title: 'Alpha', markdown: '| a | 1 |' }) }),
  beta: async () => ({ run: async () => ({ title: 'Beta', markdown: 'beta figures' }) }),
};
const now = () => new Date('2026-01-02T03:04:05.678Z');

describe('runBenches', () => {
  let dir: string;
  let printed: string;
  const log = (text: string) => {
    printed += text;
  };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-report-'));
    printed = '';
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('without an output prints each section and writes nothing', async () => {
    const file = join(dir, 'BENCHMARKS.md');
    writeFileSync(file, 'as committed\n');
    await runBenches({ modules, names: ['alpha'], output: null, log, now });
    expect(readFileSync(file, 'utf8')).toBe('as committed\n');
    expect(printed).toContain('<!-- bench:alpha:start -->\n## Alpha\n\nProduced by `npm run bench -- alpha --write` on ');
    expect(printed).toContain(', 2026-01-02T03:04:05Z.\n\n| a | 1 |\n<!-- bench:alpha:end -->');
    expect(printed).toContain('BENCHMARKS.md left as it is (--write records these results)');
    expect(existsSync(join(dir, 'other.md'))).toBe(false);
  });

  it('with an output rewrites only the sections it ran, keeping the others', async () => {
    const file = join(dir, 'BENCHMARKS.md');
    await runBenches({ modules, names: ['alpha', 'beta'], output: file, log, now });
    const first = readFileSync(file, 'utf8');
    expect(first).toMatch(/^# Benchmarks\n/);
    expect(first.indexOf('## Alpha')).toBeLessThan(first.indexOf('## Beta'));
    const changed: BenchModules = { ...modules, alpha: async () => ({ run: async () => ({ title: 'Alpha', markdown: 'new' }) }) };
    await runBenches({ modules: changed, names: ['alpha'], output: file, log, now });
    const second = readFileSync(file, 'utf8');
    expect(second).toContain('\nnew\n<!-- bench:alpha:end -->');
    expect(second).not.toContain('| a | 1 |');
    expect(second).toContain('beta figures');
    expect(printed).toContain(`wrote ${file}`);
  });

  it('refuses an unknown module by name', async () => {
    await expect(runBenches({ modules, names: ['gamma'], output: null, log })).rejects.toThrow(
      'unknown module "gamma"; known: alpha, beta',
    );
  });
});
