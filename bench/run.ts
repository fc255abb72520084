// `npm run bench [-- NAME...]`: runs the project's bench modules and rewrites their sections of BENCHMARKS.md,
// keeping the sections of modules not run this time. Each module exports run(): {title, markdown}.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchResult {
  title: string;
  markdown: string;
}

interface BenchModule {
  run(): Promise<BenchResult>;
}

/** Every bench module, in the order their sections appear; imported lazily so a subset stays light. */
const MODULES: Record<string, () => Promise<BenchModule>> = {
  tokenizer: () => import('./tokenizer.ts'),
  pipeline: () => import('./pipeline.ts'),
  edge: () => import('./edge.ts'),
  dispatch: () => import('./dispatch.ts'),
  storage: () => import('./storage.ts'),
  'edge-cpu': () => import('./edge-cpu.ts'),
  adherence: () => import('./adherence.ts'),
};

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUTPUT = join(root, 'BENCHMARKS.md');
const SECTION = /<!-- bench:([\w-]+):start -->\n[\s\S]*?<!-- bench:\1:end -->\n?/g;

function machine(): string {
  const cpu = cpus();
  const gib = (totalmem() / 2 ** 30).toFixed(1);
  return `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} logical cores, ${gib} GiB RAM, ${platform()} ${release()}, Node ${process.version}`;
}

function readSections(): Map<string, string> {
  const sections = new Map<string, string>();
  if (!existsSync(OUTPUT)) return sections;
  for (const m of readFileSync(OUTPUT, 'utf8').matchAll(SECTION)) sections.set(m[1], m[0].endsWith('\n') ? m[0] : `${m[0]}\n`);
  return sections;
}

function section(name: string, result: BenchResult, when: string): string {
  return [
    `<!-- bench:${name}:start -->`,
    `## ${result.title}`,
    '',
    `Produced by \`npm run bench -- ${name}\` on ${machine()}, ${when}.`,
    '',
    result.markdown.trim(),
    `<!-- bench:${name}:end -->`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const requested = process.argv.slice(2);
  const unknown = requested.filter((n) => !(n in MODULES));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown module ${JSON.stringify(unknown[0])}; known: ${Object.keys(MODULES).join(', ')}\n`);
    process.exit(2);
  }
  const names = requested.length > 0 ? requested : Object.keys(MODULES);
  const when = new Date().toISOString().replace(/\.\d+Z$/, 'Z');

  for (const name of names) {
    const started = performance.now();
    process.stdout.write(`bench ${name}: running...\n`);
    const mod = await MODULES[name]();
    const result = await mod.run();
    // Re-read just before writing, so a run of another module that finished meanwhile keeps its section;
    // and write after every module, so a later failure keeps what was measured.
    const sections = readSections();
    sections.set(name, section(name, result, when));
    writeFileSync(OUTPUT, render(sections, when));
    process.stdout.write(`bench ${name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  }
  process.stdout.write(`wrote ${OUTPUT}\n`);
}

function render(sections: Map<string, string>, when: string): string {
  const known = Object.keys(MODULES).filter((n) => sections.has(n));
  const others = [...sections.keys()].filter((n) => !(n in MODULES)); // sections of retired modules stay
  const header = [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (bench/run.ts); `npm run bench -- NAME` re-runs one section and keeps the others.',
    `Last run: ${when} on ${machine()}.`,
    'Each section names the command and machine that produced it.',
    '',
  ].join('\n');
  return `${header}\n${[...known, ...others].map((n) => sections.get(n)).join('\n')}`;
}

await main();
