// Runs bench modules in turn and reports each one's section: printed always, and written into a markdown file (the
// tracked BENCHMARKS.md) only when an output is given, keeping that file's sections of modules not run this time.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';

export interface BenchResult {
  title: string;
  markdown: string;
}

export interface BenchModule {
  run(): Promise<BenchResult>;
}

/** Bench modules by name, in the order their sections appear; each imported only when it runs. */
export type BenchModules = Record<string, () => Promise<BenchModule>>;

const SECTION = /<!-- bench:([\w-]+):start -->\n[\s\S]*?<!-- bench:\1:end -->\n?/g;

function machine(): string {
  const cpu = cpus();
  const gib = (totalmem() / 2 ** 30).toFixed(1);
  return `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} logical cores, ${gib} GiB RAM, ${platform()} ${release()}, Node ${process.version}`;
}

function readSections(file: string): Map<string, string> {
  const sections = new Map<string, string>();
  if (!existsSync(file)) return sections;
  for (const m of readFileSync(file, 'utf8').matchAll(SECTION)) sections.set(m[1], m[0].endsWith('\n') ? m[0] : `${m[0]}\n`);
  return sections;
}

function section(name: string, result: BenchResult, when: string): string {
  return [
    `<!-- bench:${name}:start -->`,
    `## ${result.title}`,
    '',
    `Produced by \`npm run bench -- ${name} --write\` on ${machine()}, ${when}.`,
    '',
    result.markdown.trim(),
    `<!-- bench:${name}:end -->`,
    '',
  ].join('\n');
}

function render(modules: BenchModules, sections: Map<string, string>, when: string): string {
  const known = Object.keys(modules).filter((n) => sections.has(n));
  const others = [...sections.keys()].filter((n) => !(n in modules)); // sections of retired modules stay
  const header = [
    '# Benchmarks',
    '',
    'Written by `npm run bench -- --write` (bench/run.ts); `npm run bench -- NAME --write` re-runs one section and keeps the',
    'others. Without `--write`, `npm run bench` only prints its results.',
    `Last run: ${when} on ${machine()}.`,
    'Each section names the command and machine that produced it.',
    '',
  ].join('\n');
  return `${header}\n${[...known, ...others].map((n) => sections.get(n)).join('\n')}`;
}

export interface RunBenchesOptions {
  modules: BenchModules;
  names: string[];
  /** The markdown file to write each section into; null = print only. */
  output: string | null;
  log: (text: string) => void;
  now?: () => Date;
}

/** Runs `names` in order; every section is logged, and written to `output` as soon as its module finishes. */
export async function runBenches(options: RunBenchesOptions): Promise<void> {
  const when = (options.now?.() ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z');
  for (const name of options.names) {
    const load = options.modules[name];
    if (!load) throw new Error(`unknown module ${JSON.stringify(name)}; known: ${Object.keys(options.modules).join(', ')}`);
    const started = performance.now();
    options.log(`bench ${name}: running...\n`);
    const result = await (await load()).run();
    const text = section(name, result, when);
    options.log(`\n${text}\n`);
    if (options.output) {
      // Re-read just before writing, so a run of another module that finished meanwhile keeps its section;
      // and write after every module, so a later failure keeps what was measured.
      const sections = readSections(options.output);
      sections.set(name, text);
      writeFileSync(options.output, render(options.modules, sections, when));
    }
    options.log(`bench ${name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  }
  options.log(options.output ? `wrote ${options.output}\n` : 'BENCHMARKS.md left as it is (--write records these results)\n');
}
