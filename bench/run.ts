// `npm run bench [-- NAME...] [--write]`: runs the project's bench modules and prints their sections; with --write it
// also rewrites those sections of BENCHMARKS.md, keeping the sections of modules not run this time (without it the
// tracked file is left alone). Each module exports run(): {title, markdown}.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { errorMessage } from '@sd/shared/error-message';
import { type BenchModules, runBenches } from './bench-report.ts';

export type { BenchResult } from './bench-report.ts';

/** Every bench module, in the order their sections appear; imported lazily so a subset stays light. */
const MODULES: BenchModules = {
  tokenizer: () => import('./tokenizer.ts'),
  pipeline: () => import('./pipeline.ts'),
  edge: () => import('./edge.ts'),
  dispatch: () => import('./dispatch.ts'),
  storage: () => import('./storage.ts'),
  'edge-cpu': () => import('./edge-cpu.ts'),
  adherence: () => import('./adherence.ts'),
};

const BENCHMARKS_MD = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'BENCHMARKS.md');
const USAGE = `Usage: npm run bench [-- NAME...] [--write [--output FILE]]
  NAME       one or more of: ${Object.keys(MODULES).join(', ')} (default: all, in that order)
  --write    also write each section into BENCHMARKS.md (or --output FILE), keeping the other sections;
             without it the results are only printed and the tracked file stays as it is
`;

function usageError(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}`);
  process.exit(2);
}

const OPTIONS = {
  write: { type: 'boolean', default: false },
  output: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
let parsed: ReturnType<typeof parseArgs<{ allowPositionals: true; options: typeof OPTIONS }>>;
try {
  parsed = parseArgs({ allowPositionals: true, options: OPTIONS });
} catch (err) {
  usageError(errorMessage(err));
}
if (parsed.values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const unknown = parsed.positionals.find((n) => !(n in MODULES));
if (unknown !== undefined) usageError(`unknown module ${JSON.stringify(unknown)}; known: ${Object.keys(MODULES).join(', ')}`);
const { output, write } = parsed.values;

await runBenches({
  modules: MODULES,
  names: parsed.positionals.length > 0 ? parsed.positionals : Object.keys(MODULES),
  output: output ? resolve(output) : write ? BENCHMARKS_MD : null,
  log: (text) => process.stdout.write(text),
});
